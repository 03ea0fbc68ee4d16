//! `%lsmagic`: the magics there are, from the registry.

use crate::{Call, Context, Kind, Magic, MagicError, MimeBundle, Value, REGISTRY};

pub struct Lsmagic;

impl Magic for Lsmagic {
    fn name(&self) -> &'static str {
        "lsmagic"
    }
    fn kind(&self) -> Kind {
        Kind::Line
    }
    fn help(&self) -> &'static str {
        "List currently available magic functions.

Usage:
  %lsmagic

`%name?` (or `%%name?`) shows the help of one magic."
    }

    fn run(&self, _call: &Call, _ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        let names = |cell: bool| -> Vec<String> {
            let sigil = if cell { "%%" } else { "%" };
            REGISTRY
                .iter()
                .filter(|m| if cell { m.kind().cell() } else { m.kind().line() })
                .map(|m| format!("{sigil}{}", m.name()))
                .collect()
        };
        let (line, cell) = (names(false), names(true));
        let text = format!(
            "Available line magics:\n{}\n\nAvailable cell magics:\n{}\n\nAutomagic is OFF, % prefix IS needed for line magics.",
            line.join("  "),
            cell.join("  ")
        );
        let html = format!(
            "<p><b>Available line magics:</b> {}</p><p><b>Available cell magics:</b> {}</p>",
            line.iter().map(|n| format!("<code>{n}</code>")).collect::<Vec<_>>().join(" "),
            cell.iter().map(|n| format!("<code>{n}</code>")).collect::<Vec<_>>().join(" ")
        );
        Ok(Some(Value::Result(MimeBundle::from([("text/plain".into(), text), ("text/html".into(), html)]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_registered_magic_in_order() {
        let call = crate::testing::call("lsmagic", "", None);
        let Some(Value::Result(b)) = Lsmagic.run(&call, &mut crate::testing::FakeSession::default()).unwrap() else { panic!() };
        let text = &b["text/plain"];
        let mut last = 0;
        for m in REGISTRY.iter().filter(|m| m.kind().line()) {
            let at = text.find(&format!("%{}", m.name())).unwrap();
            assert!(at >= last, "order");
            last = at;
        }
        assert!(text.starts_with("Available line magics:\n%env  %jit_asm  %jit_llvm  %jit_report  %lsmagic"));
    }
}
