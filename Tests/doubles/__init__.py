"""The test doubles: programs that stand for the real ones the agent meets (the Kubernetes API
server, kubelet, a registry and its token service, k3s's start, peers that never answer or
misbehave) and answer as those do, refusals included. Each is a program run by its path
(`python3 Tests/doubles/api-double ...`); what they share is in this package: `server`, the one
HTTP and TLS server setup they all serve through.
"""
