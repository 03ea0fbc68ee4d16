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

/// SQLite's `GLOB`, which IPython's history search uses: `*` matches any run of characters and `?`
/// any one, wherever they are in the pattern (a `*` or `?` in the text is just a character there);
/// `[abc]`, `[a-z]` and `[^abc]` match one character of (not of) a set, a `]` right after `[` or `[^`
/// being part of the set; everything else matches itself, case-sensitively, over the whole text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Backtracking over the last `*` only (enough: a later `*` subsumes earlier choices).
    let (mut pi, mut ti) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() && p[pi] == '*' {
            retry = Some((pi + 1, ti));
            pi += 1;
            continue;
        }
        if ti == t.len() {
            if pi == p.len() {
                return true;
            }
        } else if pi < p.len() {
            let step = match p[pi] {
                '?' => Some(1),
                '[' => match_class(&p[pi..], t[ti]),
                c => (c == t[ti]).then_some(1),
            };
            // `step`: the pattern characters that matched this one (a `[` that opens no complete
            // set matches nothing, as in SQLite).
            if let Some(width) = step {
                pi += width;
                ti += 1;
                continue;
            }
        }
        match retry {
            Some((star_pi, star_ti)) if star_ti < t.len() => {
                retry = Some((star_pi, star_ti + 1));
                (pi, ti) = (star_pi, star_ti + 1);
            }
            _ => return false,
        }
    }
}

/// `class` starts with `[`: the pattern characters the set takes if `c` is in it (not in it, for
/// `[^...]`); `None` when `c` does not match or the set is not closed.
fn match_class(class: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negate = class.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while i < class.len() {
        let x = class[i];
        if x == ']' && !first {
            return (found != negate).then_some(i + 1);
        }
        first = false;
        if class.get(i + 1) == Some(&'-') && class.get(i + 2).is_some_and(|&end| end != ']') {
            found |= x <= c && c <= class[i + 2];
            i += 3;
        } else {
            found |= x == c;
            i += 1;
        }
    }
    None
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
        assert!(!glob_match("?", ""));
        assert!(glob_match("a*b*c", "axxbyyc") && !glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn wildcards_stay_wildcards_where_the_text_has_the_same_character() {
        // `*` in the pattern facing a `*` in the text still matches any run.
        assert!(glob_match("a*", "a*bc"));
        assert!(glob_match("*x", "*yx"));
        assert!(glob_match("a?c", "a?c") && glob_match("a?c", "a*c"));
        assert!(glob_match("let v = *;", "let v = vec![1, 2];"));
        assert!(glob_match("*?*", "x") && !glob_match("*?*", ""));
    }

    #[test]
    fn character_sets_as_sqlite_has_them() {
        assert!(glob_match("[abc]x", "bx") && !glob_match("[abc]x", "dx"));
        assert!(glob_match("[a-c]", "b") && !glob_match("[a-c]", "d"));
        assert!(glob_match("[^a-c]", "d") && !glob_match("[^a-c]", "a"));
        assert!(glob_match("[]]", "]") && glob_match("[^]]", "x") && !glob_match("[^]]", "]"));
        assert!(glob_match("[*]", "*") && !glob_match("[*]", "a"));
        assert!(glob_match("[a-]", "-") && glob_match("x[!]", "x!"));
        assert!(!glob_match("[abc", "a") && !glob_match("[abc", "[abc"), "an open set matches nothing");
    }
}
