//! `%time` and `%%time`: one run, IPython's `CPU times: ...` and `Wall time: ...` lines.

use crate::format::time_lines;
use crate::{Call, Context, Kind, Magic, MagicError, Value};

pub struct Time;

/// The MIME type under which the harness reports `user sys wall` seconds.
const TIMES_MIME: &str = "application/x-rust-jit-time";

impl Magic for Time {
    fn name(&self) -> &'static str {
        "time"
    }
    fn kind(&self) -> Kind {
        Kind::LineAndCell
    }
    fn help(&self) -> &'static str {
        "Time one execution of a Rust statement or expression.

Usage:
  %time statement
  %%time
  code...

The CPU (user, sys) and wall clock times are printed, and the value of the
expression, if any, is the result:

  %time (0..10_000_000u64).sum::<u64>()
  CPU times: user 95.2 ms, sys: 0 ns, total: 95.2 ms
  Wall time: 95.3 ms

Variables defined with `let` inside the timed code stay local to it."
    }

    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        let statement = match &call.body {
            Some(_) if !call.args.trim().is_empty() => {
                return Err(MagicError::usage("Can't use statement directly after '%%time'!"));
            }
            Some(body) => format!("\n{body}"),
            None => call.args.clone(),
        };
        if statement.trim().is_empty() {
            return Ok(None);
        }
        crate::require_complete("%time", &statement)?;
        let report = ctx.result_part(TIMES_MIME, "format!(\"{} {} {}\", __rjk_u1 - __rjk_u0, __rjk_s1 - __rjk_s0, __rjk_wall)");
        let code = harness(&statement, call.line, &report);
        let mut bundle = ctx.run_rust(&code)?.unwrap_or_default();
        let times = bundle.remove(TIMES_MIME).unwrap_or_default();
        let t: Vec<f64> = times.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let [user, sys, wall] = t[..] else {
            return Err(MagicError::new("TimeError", format!("unexpected harness report: {times:?}")));
        };
        let mut shown = vec![Value::text(time_lines(user, sys, wall))];
        if bundle.get("text/plain").is_some_and(|v| v != "()") {
            shown.push(Value::Result(bundle));
        }
        Ok(Some(Value::Many(shown)))
    }
}

/// The timed block, with the statement on the cell's line; `report` hands the times back.
fn harness(statement: &str, line: usize, report: &str) -> String {
    let padding = "\n".repeat(line.saturating_sub(1));
    format!(
        "{padding}{{ unsafe extern \"C\" {{ fn getrusage(who: i32, usage: *mut [i64; 18]) -> i32; }} \
         let __rjk_cpu = || {{ let mut u = [0i64; 18]; unsafe {{ getrusage(0, &mut u) }}; \
         (u[0] as f64 + u[1] as f64 * 1e-6, u[2] as f64 + u[3] as f64 * 1e-6) }}; \
         let (__rjk_u0, __rjk_s0) = __rjk_cpu(); let __rjk_w0 = ::std::time::Instant::now(); \
         let __rjk_value = {{ {statement}\n}}; \
         let __rjk_wall = __rjk_w0.elapsed().as_secs_f64(); let (__rjk_u1, __rjk_s1) = __rjk_cpu(); \
         {report} __rjk_value }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeSession;
    use crate::MimeBundle;

    fn call(args: &str, body: Option<&str>) -> Call {
        Call { line: 2, ..crate::testing::call("time", args, body) }
    }

    #[test]
    fn prints_ipython_lines_and_returns_the_value() {
        let bundle = MimeBundle::from([(TIMES_MIME.into(), "0.5 0.25 1".into()), ("text/plain".into(), "42".into())]);
        let mut ctx = FakeSession { answer: Some(bundle), ..Default::default() };
        let value = Time.run(&call("6 * 7", None), &mut ctx).unwrap().unwrap();
        assert_eq!(
            value,
            Value::Many(vec![
                Value::text("CPU times: user 500 ms, sys: 250 ms, total: 750 ms\nWall time: 1 s"),
                Value::Result(MimeBundle::from([("text/plain".into(), "42".into())])),
            ])
        );
        // The statement is on the cell's line (2); the times come back through the context.
        assert!(ctx.ran[0].lines().nth(1).unwrap().contains("6 * 7"));
        assert!(ctx.ran[0].contains("report(\"application/x-rust-jit-time\", format!(\"{} {} {}\", __rjk_u1 - __rjk_u0"), "{}", ctx.ran[0]);
    }

    #[test]
    fn unit_value_is_not_a_result_and_cell_mode_rejects_a_statement() {
        let bundle = MimeBundle::from([(TIMES_MIME.into(), "0 0 0.001".into()), ("text/plain".into(), "()".into())]);
        let mut ctx = FakeSession { answer: Some(bundle), ..Default::default() };
        let Some(Value::Many(v)) = Time.run(&call("", Some("f();")), &mut ctx).unwrap() else { panic!() };
        assert_eq!(v.len(), 1);
        assert_eq!(Time.run(&call("x", Some("f();")), &mut ctx).unwrap_err().ename, "UsageError");
    }
}
