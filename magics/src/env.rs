//! `%env`: get, set, or list environment variables, as IPython's `%env`.

use crate::{Call, Context, Kind, Magic, MagicError, MimeBundle, Value};

pub struct Env;

/// Names whose values `%env` hides when it lists everything.
const SECRET_WORDS: [&str; 4] = ["key", "token", "secret", "pass"];

impl Magic for Env {
    fn name(&self) -> &'static str {
        "env"
    }
    fn kind(&self) -> Kind {
        Kind::Line
    }
    fn help(&self) -> &'static str {
        "Get, set, or list environment variables.

Usage:
  %env            lists all environment variables/values (values of names
                  containing KEY, TOKEN, SECRET or PASS are hidden)
  %env var        get value for var
  %env var val    set value for var
  %env var=val    set value for var

`{expr}` in the value is the value of the Rust expression `expr` in your
session, as IPython expands `{name}`: `%env RAYON_NUM_THREADS={threads}`
(`{{` and `}}` are braces).

A value set here takes effect at once in the kernel (later compiles see it,
e.g. RUSTFLAGS) and in the process that runs your cells (std::env::var in
the next cell sees it, e.g. RAYON_NUM_THREADS). Nothing is restarted."
    }

    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        let args = call.args.trim();
        if args.is_empty() {
            return Ok(Some(Value::Result(list(ctx.env_vars()))));
        }
        let split = if args.contains('=') { '=' } else { ' ' };
        let Some((name, value)) = args.split_once(split) else {
            return match ctx.env_vars().into_iter().find(|(k, _)| k == args) {
                Some((_, value)) => Ok(Some(Value::Result(text(python_str(&value))))),
                None => Err(MagicError::usage(format!("Environment does not have key: {args}"))),
            };
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return Err(MagicError::usage("usage is 'env var=val'"));
        }
        if name.contains(char::is_whitespace) {
            return Err(MagicError::usage(format!("refusing to set env var with whitespace: '{value}'")));
        }
        let value = expand(value, ctx)?;
        let value = value.as_str();
        if name.contains('\0') || value.contains('\0') {
            return Err(MagicError::usage("environment variables cannot contain NUL"));
        }
        ctx.set_env(name, value)?;
        Ok(Some(Value::text(format!("env: {name}={value}"))))
    }
}

/// The MIME type an expanded `{expr}`'s value comes back under.
const VALUE_MIME: &str = "application/x-rjk-env-value";

/// IPython's variable expansion in `%env`'s value: `{expr}` becomes the value of the Rust
/// expression `expr` in the session (its `Display`), `{{` and `}}` are braces.
fn expand(value: &str, ctx: &mut dyn Context) -> Result<String, MagicError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let (brace, after) = (&rest[at..at + 1], &rest[at + 1..]);
        if after.starts_with(brace) {
            out.push_str(brace);
            rest = &after[1..];
            continue;
        }
        if brace == "}" {
            return Err(MagicError::usage("%env: a `}` without its `{` (write `}}` for a brace)"));
        }
        let end = after.find('}').ok_or_else(|| MagicError::usage("%env: a `{` without its `}` (write `{{` for a brace)"))?;
        let expr = after[..end].trim();
        // The value comes back under a MIME type of its own, beside the block's `()`.
        let code = ctx.result_part(VALUE_MIME, expr);
        let shown = ctx.run_rust(&format!("{{ {code} }}\n()"))?;
        let text = shown.and_then(|b| b.get(VALUE_MIME).cloned()).ok_or_else(|| MagicError::new("ValueError", format!("%env: `{expr}` has no value to put in the variable")))?;
        out.push_str(text.trim_end_matches('\n'));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn text(s: String) -> MimeBundle {
    MimeBundle::from([("text/plain".to_string(), s)])
}

/// The environment as IPython shows `%env`'s dict, secrets hidden.
fn list(mut vars: Vec<(String, String)>) -> MimeBundle {
    vars.sort();
    let items: Vec<String> = vars
        .into_iter()
        .map(|(k, v)| {
            let lower = k.to_lowercase();
            let v = if SECRET_WORDS.iter().any(|w| lower.contains(w)) { "<hidden>".to_string() } else { v };
            format!("{}: {}", python_str(&k), python_str(&v))
        })
        .collect();
    text(format!("{{{}}}", items.join(",\n ")))
}

/// Python's `repr` of a string: single quotes unless the text has ' and no ".
pub fn python_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c)
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{call, FakeSession as FakeEnv};

    #[test]
    fn values_expand_rust_expressions() {
        let answer = MimeBundle::from([(VALUE_MIME.to_string(), "4".to_string()), ("text/plain".to_string(), "()".to_string())]);
        let mut ctx = FakeEnv { answer: Some(answer), ..Default::default() };
        assert_eq!(shown(env(&mut ctx, "RAYON_NUM_THREADS={threads}").unwrap()), "env: RAYON_NUM_THREADS=4");
        assert_eq!(ctx.ran, [format!("{{ report({VALUE_MIME:?}, threads); }}\n()")]);
        assert_eq!(shown(env(&mut ctx, "J={{\"a\": {n * 2}}}").unwrap()), "env: J={\"a\": 4}");
        assert!(env(&mut ctx, "X={oops").unwrap_err().evalue.contains("without its `}`"));
        assert!(env(&mut ctx, "X=a}b").is_err());
        assert_eq!(ctx.ran.len(), 2, "plain values run nothing");
        assert_eq!(shown(env(&mut ctx, "PLAIN=1").unwrap()), "env: PLAIN=1");
        assert_eq!(ctx.ran.len(), 2);
    }

    fn env(ctx: &mut FakeEnv, args: &str) -> Result<Option<Value>, MagicError> {
        Env.run(&call("env", args, None), ctx)
    }

    fn shown(v: Option<Value>) -> String {
        match v {
            Some(Value::Show(b)) | Some(Value::Result(b)) => b["text/plain"].clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_both_ways_then_get() {
        let mut ctx = FakeEnv::default();
        assert_eq!(shown(env(&mut ctx, "RAYON_NUM_THREADS=4").unwrap()), "env: RAYON_NUM_THREADS=4");
        assert!(matches!(env(&mut ctx, "A 1 2").unwrap(), Some(Value::Show(_))));
        assert_eq!(shown(env(&mut ctx, "A").unwrap()), "'1 2'");
        assert_eq!(shown(env(&mut ctx, "RAYON_NUM_THREADS").unwrap()), "'4'");
        assert!(matches!(env(&mut ctx, "A").unwrap(), Some(Value::Result(_))));
    }

    #[test]
    fn list_hides_secrets() {
        let mut ctx = FakeEnv { env: vec![
            ("PATH".into(), "/bin".into()),
            ("API_KEY".into(), "k".into()),
            ("GH_TOKEN".into(), "t".into()),
            ("db_password".into(), "p".into()),
            ("MY_SECRET".into(), "s".into()),
        ], ..Default::default() };
        assert_eq!(
            shown(env(&mut ctx, "").unwrap()),
            "{'API_KEY': '<hidden>',\n 'GH_TOKEN': '<hidden>',\n 'MY_SECRET': '<hidden>',\n 'PATH': '/bin',\n 'db_password': '<hidden>'}"
        );
    }

    #[test]
    fn errors_are_usage_errors() {
        let mut ctx = FakeEnv::default();
        assert_eq!(env(&mut ctx, "MISSING").unwrap_err(), MagicError::usage("Environment does not have key: MISSING"));
        assert_eq!(env(&mut ctx, "=x").unwrap_err().ename, "UsageError");
        assert_eq!(env(&mut ctx, "A B=c").unwrap_err().evalue, "refusing to set env var with whitespace: 'c'");
    }

    #[test]
    fn python_repr() {
        assert_eq!(python_str("a"), "'a'");
        assert_eq!(python_str("it's"), "\"it's\"");
        assert_eq!(python_str("a'\"b\n"), "'a\\'\"b\\n'");
    }
}
