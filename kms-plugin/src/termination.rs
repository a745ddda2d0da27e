//! The signals that stop a plugin: SIGTERM (a service manager, a kubelet)
//! and SIGINT (a terminal).

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Waits for SIGTERM or SIGINT.
///
/// Install it before [`PluginServer::serve`](super::PluginServer::serve), so
/// that a signal sent as soon as the socket exists is not lost:
///
/// ```no_run
/// use std::time::Duration;
/// use k8s_envelope_kms_plugin::{socket_endpoint, Base64MockKek, PluginServer, Termination};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut termination = Termination::install()?;
/// let endpoint = socket_endpoint("/run/kms.sock")?;
/// let handle = PluginServer::new(Base64MockKek::new()).serve(&endpoint).await?;
/// let signal = termination.recv().await;
/// handle.shutdown_within(Duration::from_secs(5)).await?;
/// eprintln!("{signal}, stopped");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Termination {
    terminate: Signal,
    interrupt: Signal,
}

impl Termination {
    /// Installs the handlers (inside a Tokio runtime with signals enabled).
    ///
    /// # Errors
    ///
    /// When the handlers cannot be installed.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the first of the two signals: `"SIGTERM"` or `"SIGINT"`.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
