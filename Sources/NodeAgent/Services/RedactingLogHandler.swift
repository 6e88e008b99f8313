import Logging
import Vocabulary

/// A log handler that masks the userinfo of every URL (Redaction) in the message and metadata,
/// and writes each on one line (control characters escaped), before the handler it wraps writes them: the last guard of the log, whatever a line was
/// built from (a check's reason, an error from the API, a proxy URL).
struct RedactingLogHandler: LogHandler {
    var wrapped: any LogHandler

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        // One line each: a line break in a reason would start a line the agent did not write.
        event.message = "\(Redaction.line(event.message.description))"
        event.metadata = event.metadata?.mapValues { .string(Redaction.line($0.description)) }
        wrapped.log(event: event)
    }
}
