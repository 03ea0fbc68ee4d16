//! This kernel's cell history, answering `history_request` (tail, range, search).

use jupyter_protocol::{HistoryEntry, HistoryRequest};

/// The session number reported in history entries (one kernel process = one session).
pub const SESSION: usize = 1;

#[derive(Debug, Clone)]
struct Cell {
    line: usize,
    input: String,
    output: String,
}

#[derive(Debug, Default)]
pub struct History {
    cells: Vec<Cell>,
}

impl History {
    pub fn record(&mut self, line: usize, input: &str, output: &str) {
        self.cells.push(Cell { line, input: input.to_string(), output: output.to_string() });
    }

    pub fn query(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        match request {
            HistoryRequest::Tail { n, output, .. } => {
                let n = (*n).max(0) as usize;
                let skip = self.cells.len().saturating_sub(n);
                self.entries(self.cells.iter().skip(skip), *output)
            }
            HistoryRequest::Range { session, start, stop, output, .. } => {
                // Negative or other sessions: only this session exists.
                if session.is_some_and(|s| s > 0 && s as usize != SESSION) {
                    return Vec::new();
                }
                let (start, stop) = (*start as i64, *stop as i64);
                let cells = self.cells.iter().filter(|c| {
                    let line = c.line as i64;
                    line >= start && (stop <= 0 || line < stop)
                });
                self.entries(cells, *output)
            }
            HistoryRequest::Search { pattern, unique, output, n, .. } => {
                let mut found: Vec<&Cell> = Vec::new();
                for cell in self.cells.iter().rev() {
                    if !glob_match(pattern, &cell.input) {
                        continue;
                    }
                    if *unique && found.iter().any(|c| c.input == cell.input) {
                        continue;
                    }
                    found.push(cell);
                    if *n > 0 && found.len() >= *n as usize {
                        break;
                    }
                }
                found.reverse();
                self.entries(found.into_iter(), *output)
            }
        }
    }

    fn entries<'a>(&self, cells: impl Iterator<Item = &'a Cell>, output: bool) -> Vec<HistoryEntry> {
        cells
            .map(|c| {
                if output {
                    HistoryEntry::InputOutput(SESSION, c.line, (c.input.clone(), c.output.clone()))
                } else {
                    HistoryEntry::Input(SESSION, c.line, c.input.clone())
                }
            })
            .collect()
    }
}

/// Shell-style glob (`*` any run, `?` one character) over the whole text, as IPython's
/// history search does.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::default();
        h.record(1, "let a = 1;", "");
        h.record(2, "a + 1", "2");
        h.record(3, "a + 1", "2");
        h.record(4, "println!(\"x\")", "");
        h
    }

    fn inputs(entries: &[HistoryEntry]) -> Vec<(usize, String)> {
        entries
            .iter()
            .map(|e| match e {
                HistoryEntry::Input(_, l, i) => (*l, i.clone()),
                HistoryEntry::InputOutput(_, l, (i, _)) => (*l, i.clone()),
            })
            .collect()
    }

    #[test]
    fn tail_returns_last_n_in_order() {
        let h = sample();
        let got = h.query(&HistoryRequest::Tail { n: 2, output: false, raw: true });
        assert_eq!(inputs(&got), vec![(3, "a + 1".into()), (4, "println!(\"x\")".into())]);
    }

    #[test]
    fn range_is_half_open() {
        let h = sample();
        let req = HistoryRequest::Range { session: Some(1), start: 2, stop: 3, output: true, raw: true };
        let got = h.query(&req);
        assert_eq!(got.len(), 1);
        assert!(matches!(&got[0], HistoryEntry::InputOutput(1, 2, (i, o)) if i == "a + 1" && o == "2"));
    }

    #[test]
    fn search_glob_unique_and_n() {
        let h = sample();
        let search = |unique, n| {
            h.query(&HistoryRequest::Search { pattern: "a*".into(), unique, output: false, raw: true, n })
        };
        assert_eq!(search(false, 0).len(), 2);
        assert_eq!(search(true, 0).len(), 1);
        assert_eq!(inputs(&search(false, 1)), vec![(3, "a + 1".into())]);
    }

    #[test]
    fn glob() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*b*", "abc"));
        assert!(!glob_match("a", "ab"));
        assert!(glob_match("1*", "1 + 1"));
    }
}
