//! The stdin channel, as ipykernel does it (no sockets here): a running cell that reads its
//! stdin asks [`Input::read`], which sends an `input_request` to the frontend on the stdin
//! channel when the execute request allowed it (`allow_stdin: true`) and waits for the
//! `input_reply` (one line per request). Without it (nbclient, CI) a read is end-of-file at
//! once, with a one-line note on stderr the first time in the session. An interrupt while
//! waiting ends the wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use jupyter_protocol::{Channel, InputRequest, JupyterMessage, JupyterMessageContent};

use crate::dispatch::{child_of, Outbox};

/// The note written on stderr the first time a cell reads stdin that the frontend does not
/// provide.
pub const NO_STDIN_NOTE: &str = "Note: this frontend does not take input (the request has allow_stdin false), so reading stdin gives end-of-file.\n";

/// What a read gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The line the user typed (without a newline).
    Line(String),
    /// End of input; `note`: what to write on the cell's stderr first.
    Eof { note: Option<&'static str> },
    /// An interrupt came while waiting: the cell stops.
    Interrupted,
}

pub struct Input {
    outbox: Arc<dyn Outbox>,
    /// The execute request running now, and whether it allows stdin.
    current: Mutex<Option<(JupyterMessage, bool)>>,
    replies: (Sender<String>, Receiver<String>),
    noted: AtomicBool,
}

impl Input {
    pub fn new(outbox: Arc<dyn Outbox>) -> Arc<Input> {
        Arc::new(Input { outbox, current: Mutex::new(None), replies: unbounded(), noted: AtomicBool::new(false) })
    }

    /// An execute request starts (the dispatch core calls this).
    pub fn begin(&self, parent: &JupyterMessage, allow_stdin: bool) {
        while self.replies.1.try_recv().is_ok() {}
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((parent.clone(), allow_stdin));
    }

    /// The execute request ended.
    pub fn end(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A message arrived on the stdin channel (the transport calls this).
    pub fn received(&self, message: &JupyterMessage) {
        match &message.content {
            JupyterMessageContent::InputReply(reply) => {
                let _ = self.replies.0.send(reply.value.clone());
            }
            other => tracing::debug!(msg_type = other.message_type(), "stdin message ignored"),
        }
    }

    /// One line of input for the running cell (see the module's documentation). `cancelled` is
    /// polled while waiting (an interrupt).
    pub fn read(&self, prompt: &str, password: bool, cancelled: &dyn Fn() -> bool) -> Answer {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some((parent, true)) = current else {
            let note = (!self.noted.swap(true, Ordering::SeqCst)).then_some(NO_STDIN_NOTE);
            return Answer::Eof { note };
        };
        let request = child_of(&parent, InputRequest { prompt: prompt.to_string(), password });
        self.outbox.send(Channel::Stdin, request);
        loop {
            match self.replies.1.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => return Answer::Line(line),
                Err(_) if cancelled() => return Answer::Interrupted,
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::{ExecuteRequest, InputReply};

    struct Sent(Mutex<Vec<(Channel, JupyterMessage)>>);
    impl Outbox for Sent {
        fn send(&self, channel: Channel, message: JupyterMessage) {
            self.0.lock().unwrap().push((channel, message));
        }
    }

    #[test]
    fn a_request_that_allows_stdin_asks_the_frontend() {
        let sent = Arc::new(Sent(Mutex::new(Vec::new())));
        let input = Input::new(sent.clone());
        let parent = JupyterMessage::new(ExecuteRequest::new("x".into()), None);
        input.begin(&parent, true);
        let reply = JupyterMessage::new(InputReply { value: "Ada".into(), ..Default::default() }, None);
        input.received(&reply);
        assert_eq!(input.read("Name: ", false, &|| false), Answer::Line("Ada".into()));
        let sent = sent.0.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert!(matches!(sent[0].0, Channel::Stdin));
        assert_eq!(sent[0].1.parent_header.as_ref().map(|h| h.msg_id.clone()), Some(parent.header.msg_id.clone()));
        match &sent[0].1.content {
            JupyterMessageContent::InputRequest(r) => assert_eq!((r.prompt.as_str(), r.password), ("Name: ", false)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_stdin_a_read_ends_at_once_with_one_note() {
        let input = Input::new(Arc::new(Sent(Mutex::new(Vec::new()))));
        let parent = JupyterMessage::new(ExecuteRequest::new("x".into()), None);
        input.begin(&parent, false);
        assert_eq!(input.read("", false, &|| false), Answer::Eof { note: Some(NO_STDIN_NOTE) });
        assert_eq!(input.read("", false, &|| false), Answer::Eof { note: None });
        // Waiting for a reply that never comes: an interrupt ends it.
        input.begin(&parent, true);
        assert_eq!(input.read("", false, &|| true), Answer::Interrupted);
    }
}
