//! Decoding of verified wire frames into messages, tolerant the way Jupyter clients need.
//!
//! `jupyter-protocol` types make every field required, but the messaging spec lets
//! clients leave some out (jupyter_client's `history(hist_access_type="search")` sends no
//! `n`). Missing fields get the spec's defaults before decoding. A request whose content
//! still does not decode becomes an [`UnknownMessage`] marked malformed, so the dispatch core
//! answers it with an error reply instead of leaving the client waiting. No sockets here.

use bytes::Bytes;
use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use serde_json::{json, Value};

/// The key under which a malformed request carries its decoding error.
pub const MALFORMED: &str = "__malformed__";

/// Spec defaults for optional request fields.
pub fn fill_defaults(msg_type: &str, content: &mut Value) {
    let Some(fields) = content.as_object_mut() else { return };
    let defaults: Value = match msg_type {
        "execute_request" => json!({"silent": false, "store_history": true, "user_expressions": {},
                                     "allow_stdin": false, "stop_on_error": true}),
        "history_request" => {
            let kind = fields.get("hist_access_type").and_then(Value::as_str).unwrap_or("tail");
            match kind {
                "search" => json!({"output": false, "raw": true, "pattern": "*", "unique": false, "n": 0}),
                "range" => json!({"output": false, "raw": true, "session": 0, "start": 0, "stop": 0}),
                _ => json!({"output": false, "raw": true, "n": 10, "hist_access_type": "tail"}),
            }
        }
        "inspect_request" => json!({"detail_level": 0}),
        "shutdown_request" => json!({"restart": false}),
        "comm_info_request" => json!({"target_name": null}),
        _ => return,
    };
    for (key, value) in defaults.as_object().into_iter().flatten() {
        if fields.get(key).is_none_or(Value::is_null) {
            fields.insert(key.clone(), value.clone());
        }
    }
}

/// Decodes the JSON frames (header, parent header, metadata, content, buffers...) of a
/// message whose signature was already verified. `Err` only when there is no usable header.
pub fn decode(identities: Vec<Bytes>, frames: &[Bytes]) -> Result<JupyterMessage, String> {
    if frames.len() < 4 {
        return Err(format!("{} JSON frames, need 4", frames.len()));
    }
    let header: Header = serde_json::from_slice(&frames[0]).map_err(|e| format!("bad header: {e}"))?;
    let parent_header = serde_json::from_slice(&frames[1]).ok();
    let metadata = serde_json::from_slice(&frames[2]).unwrap_or_else(|_| json!({}));
    let content = match serde_json::from_slice::<Value>(&frames[3]) {
        Ok(mut value) => {
            fill_defaults(&header.msg_type, &mut value);
            JupyterMessageContent::from_type_and_content(&header.msg_type, value).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("content is not JSON: {e}")),
    };
    let content = content.unwrap_or_else(|error| {
        JupyterMessageContent::UnknownMessage(UnknownMessage {
            msg_type: header.msg_type.clone(),
            content: json!({ MALFORMED: error }),
        })
    });
    Ok(JupyterMessage {
        zmq_identities: identities,
        header,
        parent_header,
        metadata,
        content,
        buffers: frames[4..].to_vec(),
        channel: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::HistoryRequest;

    fn frames(msg_type: &str, content: &str) -> Vec<Bytes> {
        let header = json!({"msg_id": "1", "username": "u", "session": "s", "date": "2026-01-01T00:00:00Z",
                            "msg_type": msg_type, "version": "5.4"});
        vec![header.to_string().into(), "{}".into(), "{}".into(), content.to_string().into()]
    }

    #[test]
    fn history_search_without_n_gets_the_defaults() {
        let m = decode(vec![], &frames("history_request", r#"{"hist_access_type": "search", "pattern": "a*"}"#)).unwrap();
        match m.content {
            JupyterMessageContent::HistoryRequest(HistoryRequest::Search { pattern, n, unique, .. }) => {
                assert_eq!((pattern.as_str(), n, unique), ("a*", 0, false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn minimal_execute_request_decodes() {
        let m = decode(vec![], &frames("execute_request", r#"{"code": "1"}"#)).unwrap();
        assert!(matches!(m.content, JupyterMessageContent::ExecuteRequest(r) if r.code == "1" && r.store_history));
    }

    #[test]
    fn undecodable_request_is_marked_malformed_and_keeps_its_header() {
        let m = decode(vec![Bytes::from_static(b"id")], &frames("complete_request", r#"{"code": 5}"#)).unwrap();
        assert_eq!(m.header.msg_type, "complete_request");
        assert_eq!(m.zmq_identities, vec![Bytes::from_static(b"id")]);
        match m.content {
            JupyterMessageContent::UnknownMessage(u) => assert!(u.content.get(MALFORMED).is_some()),
            other => panic!("{other:?}"),
        }
        let m = decode(vec![], &frames("execute_request", "{not json")).unwrap();
        assert!(matches!(m.content, JupyterMessageContent::UnknownMessage(_)));
    }

    #[test]
    fn no_header_is_an_error() {
        assert!(decode(vec![], &[Bytes::from_static(b"x")]).is_err());
        let mut f = frames("execute_request", "{}");
        f[0] = Bytes::from_static(b"{oops");
        assert!(decode(vec![], &f).is_err());
    }
}
