//! Why the receiver could not start or stop cleanly: each error names the file it concerns.

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The I/O error is part of the message (not a chained source, which would print twice).
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        path: String,
        action: &'static str,
        cause: std::io::Error,
    },
    #[error("{path}: not a fleetwatch log segment")]
    NotASegment { path: String },
    #[error("{path}: damaged record at byte {offset}")]
    Damaged { path: String, offset: u64 },
    /// The listener, the runtime or a signal handler could not be set up.
    #[error("the receiver: {0}")]
    Runtime(#[from] std::io::Error),
    #[error(
        "{path}: no token in the token file (one per line; blank lines and # comments are ignored)"
    )]
    NoTokens { path: String },
    #[error("{path}: TLS: {cause}")]
    Tls { path: String, cause: String },
    #[error(
        "refusing to listen on {listen} without --token-file: anyone who reaches it could post alerts and read every group. \
         Give --token-file FILE (and --tls-cert/--tls-key), listen on a loopback address (127.0.0.1), \
         or pass --insecure if a proxy in front authenticates"
    )]
    Insecure { listen: std::net::SocketAddr },
    /// The Kafka consumer could not start, or had to stop without committing.
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("the log writer stopped unexpectedly")]
    WriterLost,
    #[error("requests still held the receiver's state at shutdown")]
    StateInUse,
}

impl LiveError {
    /// `map_err(LiveError::io(path, "read"))`.
    pub fn io(
        path: &std::path::Path,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> LiveError {
        let path = path.display().to_string();
        move |cause| LiveError::Io {
            path,
            action,
            cause,
        }
    }
}
