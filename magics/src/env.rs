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
        const NUL: &str = "environment variables cannot contain NUL";
        if name.contains('\0') {
            return Err(MagicError::usage(NUL));
        }
        let value = match EnvValue::parse(value)? {
            EnvValue::Plain(value) => {
                if value.contains('\0') {
                    return Err(MagicError::usage(NUL));
                }
                ctx.set_env(name, &value)?;
                value
            }
            EnvValue::Computed(string) => {
                // One compile computes the value and sets it in the user process (not when it
                // has a NUL); then the kernel's side.
                let part = ctx.result_part(VALUE_MIME, "__rjk_v");
                let code = format!(
                    "{{ let __rjk_v: ::std::string::String = {string}; \
                     if !__rjk_v.contains('\\0') {{ unsafe {{ ::std::env::set_var({name:?}, &__rjk_v); }} }} {part} }}\n()"
                );
                let shown = ctx.run_rust(&code)?;
                let value = shown.and_then(|b| b.get(VALUE_MIME).cloned()).ok_or_else(|| MagicError::new("ValueError", "%env: the value has no text to put in the variable"))?;
                let value = value.strip_suffix('\n').unwrap_or(&value).to_string();
                if value.contains('\0') {
                    return Err(MagicError::usage(NUL));
                }
                ctx.set_env_in_kernel(name, &value)?;
                value
            }
        };
        Ok(Some(Value::text(format!("env: {name}={value}"))))
    }
}

/// The MIME type an expanded `{expr}`'s value comes back under.
const VALUE_MIME: &str = "application/x-rjk-env-value";

/// `%env`'s value, after IPython's variable expansion: `{expr}` is the value of the Rust
/// expression `expr` in the session (its `Display`), `{{` and `}}` are braces.
#[derive(Debug, PartialEq)]
enum EnvValue {
    /// No `{expr}`: the text itself.
    Plain(String),
    /// Rust code of a `String` expression that builds the value in the session.
    Computed(String),
}

impl EnvValue {
    fn parse(value: &str) -> Result<EnvValue, MagicError> {
        let (mut text, mut pieces, mut computed) = (String::new(), Vec::new(), false);
        let mut rest = value;
        while let Some(at) = rest.find(['{', '}']) {
            text.push_str(&rest[..at]);
            let (brace, after) = (&rest[at..at + 1], &rest[at + 1..]);
            if after.starts_with(brace) {
                text.push_str(brace);
                rest = &after[1..];
                continue;
            }
            if brace == "}" {
                return Err(MagicError::usage("%env: a `}` without its `{` (write `}}` for a brace)"));
            }
            let end = after.find('}').ok_or_else(|| MagicError::usage("%env: a `{` without its `}` (write `{{` for a brace)"))?;
            let expr = after[..end].trim();
            if expr.is_empty() {
                return Err(MagicError::usage("%env: `{}` names no expression (write `{{}}` for braces)"));
            }
            pieces.push(format!("{:?}", std::mem::take(&mut text)));
            pieces.push(format!("&::std::string::ToString::to_string(&({expr}))"));
            computed = true;
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !computed {
            return Ok(EnvValue::Plain(text));
        }
        pieces.push(format!("{text:?}"));
        let pushes: String = pieces.iter().map(|p| format!("__rjk_s.push_str({p}); ")).collect();
        Ok(EnvValue::Computed(format!("{{ let mut __rjk_s = ::std::string::String::new(); {pushes}__rjk_s }}")))
    }
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
        // One compile: the value is computed and set in the user process, then in the kernel.
        assert_eq!(ctx.ran.len(), 1);
        let ran = &ctx.ran[0];
        assert!(ran.contains(r#"__rjk_s.push_str(""); __rjk_s.push_str(&::std::string::ToString::to_string(&(threads)));"#), "{ran}");
        assert!(ran.contains(r#"::std::env::set_var("RAYON_NUM_THREADS", &__rjk_v);"#), "{ran}");
        assert!(ran.contains(&format!("report({VALUE_MIME:?}, __rjk_v);")), "{ran}");
        assert_eq!(ctx.env, [("RAYON_NUM_THREADS".to_string(), "4".to_string())]);
        // The session computes the whole value.
        ctx.answer = Some(MimeBundle::from([(VALUE_MIME.to_string(), "{\"a\": 4}\n".to_string())]));
        assert_eq!(shown(env(&mut ctx, "J={{\"a\": {n * 2}}}").unwrap()), "env: J={\"a\": 4}");
        assert!(ctx.ran[1].contains(r#"__rjk_s.push_str("{\"a\": "); __rjk_s.push_str(&::std::string::ToString::to_string(&(n * 2))); __rjk_s.push_str("}");"#), "{}", ctx.ran[1]);
        assert!(env(&mut ctx, "X={oops").unwrap_err().evalue.contains("without its `}`"));
        assert!(env(&mut ctx, "X=a}b").is_err());
        assert!(env(&mut ctx, "X={ }").unwrap_err().evalue.contains("names no expression"));
        assert_eq!(
            EnvValue::parse("a{x}b{{").unwrap(),
            EnvValue::Computed(r#"{ let mut __rjk_s = ::std::string::String::new(); __rjk_s.push_str("a"); __rjk_s.push_str(&::std::string::ToString::to_string(&(x))); __rjk_s.push_str("b{"); __rjk_s }"#.into())
        );
        assert_eq!(EnvValue::parse("{{a}}").unwrap(), EnvValue::Plain("{a}".into()));
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
