import HostSystem
