//! ZeroMQ transport: the only module that knows sockets.
//!
//! Binds the five channels of a connection file with `jupyter-zmq-client` (which frames and
//! signs messages), feeds shell requests to the engine thread, answers control requests with
//! [`Control`], echoes heartbeats, and owns the IOPub XPUB socket, which welcomes each new
//! subscriber (JEP 65) and publishes what the [`Outbox`] receives.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use jupyter_protocol::{Channel, ConnectionInfo, IoPubWelcome, JupyterMessage, JupyterMessageContent};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection, create_kernel_iopub_xpub_connection,
    create_kernel_shell_connection, create_kernel_stdin_connection, RawMessage, RouterRecvConnection, RuntimeError,
    SubscriptionEvent,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use zeromq::{SocketRecv, SocketSend};

use crate::dispatch::{Control, Flow, Outbox};

/// The core's outbox: messages queue here until the socket task sends them.
pub struct QueueOutbox(UnboundedSender<(Channel, JupyterMessage)>);

impl Outbox for QueueOutbox {
    fn send(&self, channel: Channel, message: JupyterMessage) {
        let _ = self.0.send((channel, message));
    }
}

pub fn outbox() -> (Arc<QueueOutbox>, UnboundedReceiver<(Channel, JupyterMessage)>) {
    let (tx, rx) = unbounded_channel();
    (Arc::new(QueueOutbox(tx)), rx)
}

/// What reading a request socket gave.
enum Read {
    Message(JupyterMessage),
    /// Dropped (bad signature, bad framing, no header): logged, nothing answered or run.
    Dropped(String),
    /// The socket itself failed.
    Failed(String),
}

/// Receives one multipart message, checks its signature (jupyter-zmq-client) and decodes it
/// with the spec's defaults ([`crate::wire::decode`]).
async fn read_request(connection: &mut RouterRecvConnection) -> Read {
    let frames = match connection.socket.recv().await {
        Ok(frames) => frames,
        Err(error) => return Read::Failed(error.to_string()),
    };
    let raw = match RawMessage::from_multipart(frames, &connection.mac) {
        Ok(raw) => raw,
        Err(error @ RuntimeError::VerifyError(_)) => return Read::Dropped(format!("bad signature: {error}")),
        Err(error) => return Read::Dropped(error.to_string()),
    };
    match crate::wire::decode(raw.zmq_identities, &raw.jparts) {
        Ok(message) => Read::Message(message),
        Err(error) => Read::Dropped(error),
    }
}

/// Serves until a shutdown is requested (on control, or by the engine via `engine_done`).
pub async fn serve(
    info: &ConnectionInfo,
    session: &str,
    mut outgoing: UnboundedReceiver<(Channel, JupyterMessage)>,
    shell_requests: Sender<JupyterMessage>,
    control: Control,
    input: Arc<crate::input::Input>,
    engine_done: tokio::sync::oneshot::Receiver<anyhow::Result<Flow>>,
) -> anyhow::Result<Flow> {
    let control = Arc::new(control);
    let mut heartbeat = create_kernel_heartbeat_connection(info).await?;
    let (mut shell_out, mut shell_in) = create_kernel_shell_connection(info, session).await?.split();
    let (mut control_out, mut control_in) = create_kernel_control_connection(info, session).await?.split();
    let stdin = create_kernel_stdin_connection(info, session).await?;
    let mut iopub = create_kernel_iopub_xpub_connection(info, session).await?;
    tracing::info!(shell = info.shell_port, iopub = info.iopub_port, "kernel sockets bound");

    tokio::spawn(async move {
        while let Ok(ping) = heartbeat.socket.recv().await {
            if heartbeat.socket.send(ping).await.is_err() {
                break;
            }
        }
    });

    let shell_control = control.clone();
    tokio::spawn(async move {
        loop {
            match read_request(&mut shell_in).await {
                Read::Message(message) => {
                    tracing::debug!(msg_type = message.header.msg_type, "shell request");
                    if let JupyterMessageContent::KernelInfoRequest(_) = message.content {
                        // Stateless: answered at once, even while the engine starts or runs a cell.
                        shell_control.handle(Channel::Shell, &message);
                        continue;
                    }
                    if shell_requests.send(message).is_err() {
                        break;
                    }
                }
                Read::Dropped(error) => tracing::warn!(%error, "shell: message dropped"),
                Read::Failed(error) => {
                    tracing::error!(%error, "shell socket failed");
                    break;
                }
            }
        }
    });

    // The stdin socket: replies to input requests go to `input`; requests go out from the loop
    // below (a socket's halves: reading here, sending there).
    let (mut stdin_out, mut stdin_in) = stdin.split();
    tokio::spawn(async move {
        loop {
            match read_request(&mut stdin_in).await {
                Read::Message(message) => input.received(&message),
                Read::Dropped(error) => tracing::warn!(%error, "stdin: message dropped"),
                Read::Failed(error) => {
                    tracing::error!(%error, "stdin socket failed");
                    break;
                }
            }
        }
    });

    let (control_flow_tx, mut control_flow_rx) = tokio::sync::mpsc::unbounded_channel::<Flow>();
    let control_task = tokio::spawn(async move {
        loop {
            match read_request(&mut control_in).await {
                Read::Message(message) => {
                    let flow = tokio::task::block_in_place(|| control.handle(Channel::Control, &message));
                    if flow != Flow::Continue {
                        let _ = control_flow_tx.send(flow);
                    }
                }
                Read::Dropped(error) => tracing::warn!(%error, "control: message dropped"),
                Read::Failed(error) => {
                    tracing::error!(%error, "control socket failed");
                    break;
                }
            }
        }
    });

    let mut engine_done = engine_done;
    let mut shutdown: Option<Flow> = None;
    loop {
        tokio::select! {
            Some((channel, message)) = outgoing.recv() => {
                let sent = match channel {
                    Channel::Shell => shell_out.send(message).await,
                    Channel::Control => control_out.send(message).await,
                    Channel::IOPub => iopub.send(message).await,
                    Channel::Stdin => stdin_out.send(message).await,
                    other => { tracing::warn!(?other, "no socket for channel"); Ok(()) }
                };
                if let Err(error) = sent {
                    tracing::warn!(%error, "send failed");
                }
            }
            event = iopub.recv_subscription() => match event {
                Ok(SubscriptionEvent::Subscribe(topic)) => {
                    let welcome: JupyterMessage = IoPubWelcome::new(topic).into();
                    if let Err(error) = iopub.send(crate::dispatch::with_version(welcome)).await {
                        tracing::warn!(%error, "iopub_welcome failed");
                    }
                }
                Ok(SubscriptionEvent::Unsubscribe(_)) => {}
                Err(error) => tracing::debug!(%error, "iopub subscription message"),
            },
            Some(flow) = control_flow_rx.recv(), if shutdown.is_none() => shutdown = Some(flow),
            flow = &mut engine_done, if shutdown.is_none() => match flow {
                Ok(Ok(flow)) => shutdown = Some(flow),
                Ok(Err(error)) => return Err(error),
                Err(_) => shutdown = Some(Flow::Shutdown { restart: false }),
            },
            _ = tokio::time::sleep(Duration::from_millis(50)), if shutdown.is_some() => {
                // Everything queued before the shutdown has been sent.
                if outgoing.is_empty() { break; }
            }
        }
    }
    // Let the last replies leave the sockets.
    tokio::time::sleep(Duration::from_millis(100)).await;
    control_task.abort();
    Ok(shutdown.unwrap_or(Flow::Shutdown { restart: false }))
}
