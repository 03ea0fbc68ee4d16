//! The dispatch core: Jupyter requests in, Jupyter messages out. No sockets here.
//!
//! [`Shell`] owns the [`Backend`] and handles shell-channel requests one at a time on
//! the engine thread; [`Control`] answers control-channel requests (interrupt, shutdown,
//! kernel_info) at once, even while a cell runs. Both publish `status: busy` before and
//! `status: idle` after every request, in one place ([`Publisher::around`]). Everything
//! they send goes through an [`Outbox`], which the transport (or a test) provides.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use jupyter_protocol::{
    Channel, ClearOutput, CodeMirrorMode, CommInfoReply, CompleteReply, CompleteRequest, DisplayData,
    ErrorOutput, ExecuteInput, ExecuteReply, ExecuteRequest, ExecuteResult, ExecutionCount,
    HelpLink, HistoryReply, InspectReply, InspectRequest, InterruptReply, IsCompleteReply,
    JupyterMessage, JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, Payload, ReplyError,
    ReplyStatus, ShutdownReply, Status, StreamContent, UnknownMessage,
};
use serde_json::Value;

use crate::backend::{Backend, CellError, Interrupter, LiveOutput, MimeBundle};
use crate::history::History;
use magics::lex::{self, Completeness};

/// The messaging protocol version this kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.4";

/// Where the core's messages go. The transport routes them to sockets; tests collect them.
pub trait Outbox: Send + Sync {
    fn send(&self, channel: Channel, message: JupyterMessage);
}

/// What the caller should do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Shutdown { restart: bool },
}

/// Builds a message that answers or reports on `parent`.
pub fn child_of(parent: &JupyterMessage, content: impl Into<JupyterMessageContent>) -> JupyterMessage {
    with_version(JupyterMessage::new(content, Some(parent)))
}

/// Stamps this kernel's protocol version and user name on a message's header.
pub fn with_version(mut message: JupyterMessage) -> JupyterMessage {
    message.header.version = PROTOCOL_VERSION.to_string();
    message.header.username = "kernel".to_string();
    message
}

/// The `kernel_info_reply` content for a given rustc version.
pub fn kernel_info(rustc_version: &str) -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: PROTOCOL_VERSION.to_string(),
        implementation: "rust-jit-kernel".to_string(),
        implementation_version: env!("CARGO_PKG_VERSION").to_string(),
        language_info: LanguageInfo {
            name: "rust".to_string(),
            version: rustc_version.to_string(),
            mimetype: Some("text/rust".to_string()),
            file_extension: Some(".rs".to_string()),
            pygments_lexer: Some("rust".to_string()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".to_string())),
            nbconvert_exporter: None,
        },
        banner: format!(
            "Rust (JIT) {} - rustc {rustc_version}, cells evaluated by evcxr",
            env!("CARGO_PKG_VERSION")
        ),
        help_links: vec![
            HelpLink { text: "The Rust Book".into(), url: "https://doc.rust-lang.org/book/".into() },
            HelpLink { text: "Rust standard library".into(), url: "https://doc.rust-lang.org/std/".into() },
            HelpLink { text: "ndarray".into(), url: "https://docs.rs/ndarray/".into() },
        ],
        debugger: false,
        error: None,
    }
}

/// Sends messages on behalf of one request.
#[derive(Clone)]
pub struct Publisher {
    outbox: Arc<dyn Outbox>,
}

impl Publisher {
    pub fn new(outbox: Arc<dyn Outbox>) -> Self {
        Publisher { outbox }
    }

    pub fn iopub(&self, parent: &JupyterMessage, content: impl Into<JupyterMessageContent>) {
        let mut message = child_of(parent, content);
        // IOPub carries no routing identities; subscribers take every topic.
        message.zmq_identities.clear();
        self.outbox.send(Channel::IOPub, message);
    }

    pub fn reply(&self, channel: Channel, parent: &JupyterMessage, content: impl Into<JupyterMessageContent>) {
        self.outbox.send(channel, child_of(parent, content));
    }

    /// Publishes busy, runs `f`, publishes idle: once per request, for every request.
    pub fn around<T>(&self, parent: &JupyterMessage, f: impl FnOnce() -> T) -> T {
        self.iopub(parent, Status::busy());
        let result = f();
        self.iopub(parent, Status::idle());
        result
    }

    /// The answer to a request type this kernel does not know: an error reply.
    fn unknown(&self, channel: Channel, parent: &JupyterMessage, unknown: &UnknownMessage) {
        let malformed = unknown.content.get(crate::wire::MALFORMED).and_then(Value::as_str);
        tracing::warn!(msg_type = %unknown.msg_type, ?malformed, "request not understood");
        if !unknown.msg_type.ends_with("_request") {
            return;
        }
        let (ename, evalue) = match malformed {
            Some(error) => ("MalformedMessage", format!("malformed `{}`: {error}", unknown.msg_type)),
            None => ("UnknownMessageType", format!("rust-jit-kernel does not handle `{}`", unknown.msg_type)),
        };
        let content = serde_json::json!({"status": "error", "ename": ename, "evalue": evalue, "traceback": [evalue]});
        self.reply(channel, parent, unknown.reply(content));
    }
}

/// Shell-channel state: the backend, the execution counter and the history.
pub struct Shell<B: Backend> {
    backend: B,
    publisher: Publisher,
    execution_count: usize,
    history: History,
    /// The requests not yet taken (while `run` serves them).
    requests: Option<Receiver<JupyterMessage>>,
    /// Taken from the queue when an execute with `stop_on_error` failed, before its reply went
    /// out: what the client had queued behind it. Executes among them are aborted.
    queued_behind_failure: Vec<JupyterMessage>,
    /// The stdin channel the backend's cells read from: told which request runs.
    input: Option<Arc<crate::input::Input>>,
    /// The backend's warm-up has not run, and no cell has (see [`Shell::next_request`]).
    warm_up_due: bool,
    /// An interrupt stopped the warm-up while an execute waited: it was meant for that cell.
    interrupt_next: bool,
}

impl<B: Backend> Shell<B> {
    /// (`kernel_info_request` is answered by [`Control`], whichever channel it came on.)
    pub fn new(backend: B, outbox: Arc<dyn Outbox>) -> Self {
        Shell {
            backend,
            publisher: Publisher::new(outbox),
            execution_count: 0,
            history: History::default(),
            requests: None,
            queued_behind_failure: Vec::new(),
            input: None,
            warm_up_due: true,
            interrupt_next: false,
        }
    }

    /// The stdin channel of the backend's cells (see [`crate::input`]).
    pub fn with_input(mut self, input: Arc<crate::input::Input>) -> Self {
        self.input = Some(input);
        self
    }

    /// Serves requests until the channel closes or a shutdown is requested. At the first moment
    /// no request is waiting, before any cell has run, the backend does its one-time work
    /// ([`Backend::warm_up`]): a request that arrives meanwhile waits only for what is left of it.
    pub fn run(mut self, requests: Receiver<JupyterMessage>) -> Flow {
        self.requests = Some(requests);
        while let Some(message) = self.next_request() {
            if let flow @ Flow::Shutdown { .. } = self.handle(&message) {
                return flow;
            }
            // Requests that arrived while the failed cell ran: executes are aborted,
            // everything else is answered as usual. (Taken before the failed cell's reply went
            // out: a request sent after it is not "queued behind" it.)
            for queued in std::mem::take(&mut self.queued_behind_failure) {
                let flow = if matches!(queued.content, JupyterMessageContent::ExecuteRequest(_)) {
                    self.abort(&queued);
                    Flow::Continue
                } else {
                    self.handle(&queued)
                };
                if let Flow::Shutdown { .. } = flow {
                    return flow;
                }
            }
        }
        Flow::Shutdown { restart: false }
    }

    /// The next request, waiting for it; first, if none is waiting and the warm-up is still due,
    /// the backend's warm-up. An interrupt that stopped the warm-up was meant for the cell sent
    /// meanwhile: that cell ends as interrupted, without running.
    fn next_request(&mut self) -> Option<JupyterMessage> {
        use std::sync::mpsc::TryRecvError;
        match self.requests.as_ref()?.try_recv() {
            Ok(message) => return Some(message),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if std::mem::take(&mut self.warm_up_due) => {
                if self.backend.warm_up() {
                    if let Ok(message) = self.requests.as_ref()?.try_recv() {
                        self.interrupt_next = matches!(message.content, JupyterMessageContent::ExecuteRequest(_));
                        return Some(message);
                    }
                }
            }
            Err(TryRecvError::Empty) => {}
        }
        self.requests.as_ref()?.recv().ok()
    }

    /// Handles one shell request, with busy/idle around it.
    pub fn handle(&mut self, message: &JupyterMessage) -> Flow {
        let publisher = self.publisher.clone();
        publisher.around(message, || self.dispatch(message))
    }

    fn dispatch(&mut self, message: &JupyterMessage) -> Flow {
        let publisher = self.publisher.clone();
        let reply = |content: JupyterMessageContent| publisher.reply(Channel::Shell, message, content);
        match &message.content {
            JupyterMessageContent::ExecuteRequest(request) => self.execute(message, request),
            JupyterMessageContent::IsCompleteRequest(request) => {
                let content = match lex::check(&request.code) {
                    Completeness::Complete => IsCompleteReply::complete(),
                    Completeness::Incomplete { indent } => IsCompleteReply::incomplete(indent),
                    Completeness::Invalid => IsCompleteReply::invalid(),
                };
                reply(content.into())
            }
            JupyterMessageContent::CompleteRequest(request) => {
                let content = self.complete(request);
                reply(content.into())
            }
            JupyterMessageContent::InspectRequest(request) => {
                let content = self.inspect(request);
                reply(content.into())
            }
            JupyterMessageContent::HistoryRequest(request) => {
                reply(HistoryReply::new(self.history.query(request)).into())
            }
            JupyterMessageContent::CommInfoRequest(_) => reply(CommInfoReply::default().into()),
            JupyterMessageContent::ShutdownRequest(request) => {
                reply(ShutdownReply { restart: request.restart, status: ReplyStatus::Ok, error: None }.into());
                return Flow::Shutdown { restart: request.restart };
            }
            JupyterMessageContent::UnknownMessage(unknown) => publisher.unknown(Channel::Shell, message, unknown),
            other => tracing::warn!(msg_type = other.message_type(), "not a shell request; ignored"),
        }
        Flow::Continue
    }

    fn execute(&mut self, parent: &JupyterMessage, request: &ExecuteRequest) {
        // A cell does the warm-up's work itself if it comes first.
        self.warm_up_due = false;
        let silent = request.silent;
        let store = request.store_history && !silent;
        if store {
            self.execution_count += 1;
        }
        let count = ExecutionCount::new(self.execution_count);
        if !silent {
            self.publisher.iopub(parent, ExecuteInput { code: request.code.clone(), execution_count: count });
        }

        let publisher = &self.publisher;
        let sink = |output: LiveOutput| {
            if silent {
                return;
            }
            match output {
                LiveOutput::Stdout(text) => publisher.iopub(parent, StreamContent::stdout(&text)),
                LiveOutput::Stderr(text) => publisher.iopub(parent, StreamContent::stderr(&text)),
                LiveOutput::Display(bundle) => publisher.iopub(parent, DisplayData::new(media(&bundle))),
                LiveOutput::Clear { wait } => publisher.iopub(parent, ClearOutput { wait }),
            }
        };
        let (result, payload) = match help_request(&request.code) {
            _ if std::mem::take(&mut self.interrupt_next) => {
                let evalue = "the cell was stopped before it ran (the kernel was still getting ready). Nothing was lost: all variables are kept.";
                (Err(CellError::new("Interrupted", evalue)), Vec::new())
            }
            Some(name) => self.help(name),
            None => {
                let backend = &mut self.backend;
                if let Some(input) = &self.input {
                    input.begin(parent, request.allow_stdin);
                }
                let run = || crate::cell::run(backend, &request.code, &sink);
                let result = guarded(run, |bug| Err(CellError::new("InternalError", bug)));
                if let Some(input) = &self.input {
                    input.end();
                }
                (result, Vec::new())
            }
        };

        let mut reply = ExecuteReply {
            status: ReplyStatus::Ok,
            execution_count: count,
            payload,
            user_expressions: Some(HashMap::new()),
            error: None,
        };
        let mut output_text = String::new();
        match result {
            Ok(Some(bundle)) => {
                output_text = bundle.get("text/plain").cloned().unwrap_or_default();
                if !silent {
                    let result = ExecuteResult { transient: Some(Default::default()), ..ExecuteResult::new(count, media(&bundle)) };
                    self.publisher.iopub(parent, result);
                }
            }
            Ok(None) => {}
            Err(CellError { ename, evalue, traceback }) => {
                if !silent {
                    self.publisher.iopub(
                        parent,
                        ErrorOutput { ename: ename.clone(), evalue: evalue.clone(), traceback: traceback.clone() },
                    );
                }
                reply.status = ReplyStatus::Error;
                reply.error = Some(Box::new(ReplyError { ename, evalue, traceback }));
                if request.stop_on_error {
                    if let Some(requests) = &self.requests {
                        self.queued_behind_failure.extend(requests.try_iter());
                    }
                }
            }
        }
        if store {
            self.history.record(self.execution_count, &request.code, &output_text);
        }
        self.publisher.reply(Channel::Shell, parent, reply);
    }

    /// `?name`: the documentation of `name` in the pager (IPython's `?obj`), as a `page` payload.
    fn help(&mut self, name: &str) -> (Result<Option<MimeBundle>, CellError>, Vec<Payload>) {
        let backend = &mut self.backend;
        match guarded(|| backend.inspect(name, name.len()), |_| None) {
            Some(bundle) => (Ok(None), vec![Payload::Page { data: media(&bundle), start: 0 }]),
            None => (Err(CellError::new("NotFound", format!("no documentation found for `{name}`"))), Vec::new()),
        }
    }

    /// Answers an execute that was queued behind a failed cell (`stop_on_error`).
    fn abort(&mut self, message: &JupyterMessage) {
        let count = ExecutionCount::new(self.execution_count);
        self.publisher.around(message, || {
            let reply = ExecuteReply { status: ReplyStatus::Aborted, execution_count: count, ..Default::default() };
            self.publisher.reply(Channel::Shell, message, reply);
        });
    }

    fn complete(&mut self, request: &CompleteRequest) -> CompleteReply {
        let cursor = byte_offset(&request.code, request.cursor_pos);
        let backend = &mut self.backend;
        let completions = guarded(|| backend.complete(&request.code, cursor), |_| Default::default());
        CompleteReply {
            matches: completions.matches,
            cursor_start: char_offset(&request.code, completions.start),
            cursor_end: char_offset(&request.code, completions.end),
            ..Default::default()
        }
    }

    fn inspect(&mut self, request: &InspectRequest) -> InspectReply {
        let cursor = byte_offset(&request.code, request.cursor_pos);
        let backend = &mut self.backend;
        match guarded(|| backend.inspect(&request.code, cursor), |_| None) {
            Some(bundle) => InspectReply { found: true, data: media(&bundle), ..Default::default() },
            None => InspectReply::default(),
        }
    }
}

/// Control-channel requests: answered at once, even while the shell is busy. Also answers
/// `kernel_info_request` from the shell channel, so a client learns the kernel is up while
/// the engine is still starting.
pub struct Control {
    publisher: Publisher,
    interrupter: Arc<dyn Interrupter>,
    info: KernelInfoReply,
}

impl Control {
    pub fn new(outbox: Arc<dyn Outbox>, interrupter: Arc<dyn Interrupter>, info: KernelInfoReply) -> Self {
        Control { publisher: Publisher::new(outbox), interrupter, info }
    }

    /// Handles a request that arrived on `channel` (replies go back on it).
    pub fn handle(&self, channel: Channel, message: &JupyterMessage) -> Flow {
        self.publisher.around(message, || {
            let reply = |content: JupyterMessageContent| self.publisher.reply(channel.clone(), message, content);
            match &message.content {
                JupyterMessageContent::KernelInfoRequest(_) => {
                    reply(JupyterMessageContent::KernelInfoReply(Box::new(self.info.clone())))
                }
                JupyterMessageContent::InterruptRequest(_) => {
                    let stopped = self.interrupter.interrupt();
                    tracing::info!(stopped, "interrupt_request");
                    reply(InterruptReply::new().into())
                }
                JupyterMessageContent::ShutdownRequest(request) => {
                    self.interrupter.terminate();
                    reply(ShutdownReply { restart: request.restart, status: ReplyStatus::Ok, error: None }.into());
                    return Flow::Shutdown { restart: request.restart };
                }
                JupyterMessageContent::UnknownMessage(unknown) => self.publisher.unknown(channel.clone(), message, unknown),
                other => tracing::warn!(msg_type = other.message_type(), "not a control request; ignored"),
            }
            Flow::Continue
        })
    }
}

/// Runs a backend call; a panic in it (a bug in the engine) becomes `on_bug(message)` so the
/// kernel keeps serving.
fn guarded<T>(call: impl FnOnce() -> T, on_bug: impl FnOnce(String) -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        tracing::error!(%message, "the engine panicked");
        on_bug(format!("the kernel hit a bug ({message}); it goes on serving, but this session may be unstable"))
    })
}

/// `?name` alone in a cell (a Rust path; `?` in front is not valid Rust): the name to look up.
pub fn help_request(code: &str) -> Option<&str> {
    let name = code.trim().strip_prefix('?')?.trim();
    let is_path = !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '.')
        && !name.starts_with(':');
    is_path.then_some(name)
}

/// A MIME bundle as protocol `Media` (JSON MIME types carry parsed JSON).
pub fn media(bundle: &MimeBundle) -> Media {
    let map: serde_json::Map<String, Value> = bundle
        .iter()
        .map(|(mime, data)| {
            let is_json = mime == "application/json" || mime.ends_with("+json");
            let value = if is_json {
                serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone()))
            } else {
                Value::String(data.clone())
            };
            (mime.clone(), value)
        })
        .collect();
    serde_json::from_value(Value::Object(map)).unwrap_or_default()
}

/// Jupyter cursor positions count Unicode code points; Rust strings index bytes.
pub fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}

pub fn char_offset(text: &str, bytes: usize) -> usize {
    text[..bytes.min(text.len())].chars().count()
}

#[cfg(test)]
mod tests;
