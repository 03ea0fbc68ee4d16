//! A lexical scan of Rust code: is it complete (all brackets, strings and block comments
//! closed)? Used for `is_complete_request` and to tell a `%magic` line from a Rust line
//! that continues an expression.
//!
//! Unclosed brackets, strings or block comments mean "incomplete" (the next line is indented
//! one level per open bracket); a closing bracket that does not match means "invalid".

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    Incomplete { indent: String },
    Invalid,
}

pub fn check(code: &str) -> Completeness {
    let chars: Vec<char> = code.chars().collect();
    let mut stack: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    match (chars.get(i), chars.get(i + 1)) {
                        (None, _) => return incomplete(stack.len()),
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 2
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 2
                        }
                        _ => i += 1,
                    }
                }
                continue;
            }
            'r' if matches!(next, Some('"') | Some('#')) && !ident_before(&chars, i) => {
                // Raw string r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    match chars.get(j) {
                        None => return incomplete(stack.len()),
                        Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                            i = j + 1 + hashes;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                continue;
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return incomplete(stack.len()),
                        Some('\\') => j += 2,
                        Some('"') => break,
                        _ => j += 1,
                    }
                }
                i = j + 1;
                continue;
            }
            '\'' => {
                // A char literal ('a', '\n') or a lifetime ('a): skip only literals.
                if next == Some('\\') {
                    let mut j = i + 2;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                    continue;
                }
                if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                    continue;
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Completeness::Invalid;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() {
        Completeness::Complete
    } else {
        incomplete(stack.len())
    }
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn incomplete(depth: usize) -> Completeness {
    Completeness::Incomplete { indent: "    ".repeat(depth) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Completeness)] = &[
            ("1 + 1", Completeness::Complete),
            ("let a = vec![1, 2];", Completeness::Complete),
            ("fn f() {\n    1\n}", Completeness::Complete),
            ("let s = \"{ not a brace\";", Completeness::Complete),
            ("let c = '{';", Completeness::Complete),
            ("fn f<'a>(x: &'a str) -> &'a str { x }", Completeness::Complete),
            ("// { comment\n1", Completeness::Complete),
            ("let r = r#\"}\"#;", Completeness::Complete),
            ("fn f() {", incomplete(1)),
            ("for i in 0..3 {\n    if i > 1 {", incomplete(2)),
            ("let s = \"open", incomplete(0)),
            ("/* open comment", incomplete(0)),
            ("foo(", incomplete(1)),
            ("fn f() }", Completeness::Invalid),
            ("(]", Completeness::Invalid),
        ];
        for (code, want) in cases {
            assert_eq!(&check(code), want, "code: {code:?}");
        }
    }
}
