//! What `%jit_asm` and `%jit_llvm` show of a compiled function: the part of rustc's assembly
//! (or LLVM IR) for one library that is the function, selected, demangled, with the cell's
//! source lines between the instructions, and (assembly) its vector instructions marked.
//!
//! Pure text in, text out: the kernel gives a [`CompiledCode`] (the files rustc wrote beside
//! the library), these functions cut and annotate it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

/// A compiled function and what rustc wrote for its library (given by the kernel).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompiledCode {
    pub name: String,
    /// How it was compiled, in words (`#[jit]`, or `plain cell code, opt-level 0`).
    pub what: String,
    /// rustc's assembly for the library (Intel syntax).
    pub asm: String,
    /// rustc's LLVM IR for the library (after optimisation).
    pub llvm_ir: String,
    /// Where a listing starts: symbols, or demangled paths without their hash (`krate::name`).
    pub roots: Vec<String>,
    /// The crate's source, and the file name its debug info gives it.
    pub source: String,
    pub source_name: String,
    /// Crate line of the function's first line, and the cell line that is.
    pub first_line: usize,
    pub cell_line: usize,
    /// The function as written in the cell (from its first line).
    pub written: String,
}

impl CompiledCode {
    /// The text to show for crate line `line`: `(cell line, text)` for the function's lines,
    /// `(None, text)` for the crate's other lines.
    fn source_line(&self, line: usize) -> Option<(Option<usize>, &str)> {
        let offset = line.checked_sub(self.first_line);
        if let Some(text) = offset.and_then(|k| self.written.lines().nth(k)) {
            return Some((Some(self.cell_line + offset.unwrap_or(0)), text));
        }
        self.source.lines().nth(line.checked_sub(1)?).map(|text| (None, text))
    }

    fn comment(&self, line: usize, sigil: &str) -> Option<String> {
        let (cell, text) = self.source_line(line)?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        Some(match cell {
            Some(cell) => format!("{sigil} cell line {cell}: {text}"),
            None => format!("{sigil} {text}"),
        })
    }
}

/// A listing: lines with what they are, and a one-line summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub summary: String,
    pub lines: Vec<(LineKind, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A function's heading.
    Function,
    /// A source line (cell or crate) before the code it became.
    Source,
    /// A jump target.
    Label,
    Instruction,
    /// An instruction on vectors (packed SIMD).
    Vector,
    /// A note (what was left out).
    Note,
}

impl Listing {
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.summary);
        for (kind, line) in &self.lines {
            if *kind == LineKind::Function && !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// `<pre>` with vector instructions highlighted and source lines greyed.
    pub fn html(&self) -> String {
        let mut out = format!("<p><b>{}</b></p>\n<pre style=\"line-height:1.3\">", escape(&self.summary));
        for (kind, line) in &self.lines {
            let text = escape(line);
            let _ = match kind {
                LineKind::Function => write!(out, "\n<b>{text}</b>"),
                LineKind::Source => write!(out, "<span style=\"color:#6a737d\">{text}</span>"),
                LineKind::Vector => write!(out, "<span style=\"background-color:#fff3b0;color:#7a3e00;font-weight:bold\">{text}</span>"),
                LineKind::Note => write!(out, "<i>{text}</i>"),
                LineKind::Label | LineKind::Instruction => write!(out, "{text}"),
            };
            out.push('\n');
        }
        out.push_str("</pre>");
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The demangled form of `symbol` without its hash (`ndarray::zip::Zip<...>::for_each`), or
/// the symbol itself when it is not a Rust one.
pub fn demangle(symbol: &str) -> String {
    match rustc_demangle::try_demangle(symbol) {
        Ok(d) => format!("{d:#}"),
        Err(_) => symbol.to_string(),
    }
}

/// Every mangled Rust symbol in `text` replaced by its demangled form.
fn demangle_in(text: &str) -> String {
    let symbol_char = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(symbol_char).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !symbol_char(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.starts_with("_ZN") || word.starts_with("_R") {
            match rustc_demangle::try_demangle(word) {
                Ok(d) => {
                    let _ = write!(out, "{d:#}");
                }
                Err(_) => out.push_str(word),
            }
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out
}

/// A function's lines in a listing, and the functions it calls that the file defines.
struct Body<'a> {
    lines: Vec<&'a str>,
    calls: Vec<String>,
}

/// The selection rule, for assembly and IR alike: the roots, then every function of the file
/// they call (directly or not), breadth first, up to `MAX_LINES` lines.
fn select(bodies: &BTreeMap<String, Body<'_>>, roots: &[String]) -> Vec<String> {
    let mut order = Vec::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for root in roots {
        let found = bodies.keys().find(|s| *s == root || demangle(s) == *root);
        if let Some(symbol) = found {
            if !queue.contains(symbol) {
                queue.push_back(symbol.clone());
            }
        }
    }
    let mut seen: Vec<String> = queue.iter().cloned().collect();
    while let Some(symbol) = queue.pop_front() {
        order.push(symbol.clone());
        for call in &bodies[&symbol].calls {
            if bodies.contains_key(call) && !seen.contains(call) {
                seen.push(call.clone());
                queue.push_back(call.clone());
            }
        }
    }
    order
}

/// At most this many lines of code in a listing (an opt-level-0 function calls a great many).
pub const MAX_LINES: usize = 3000;

/// The listing of `code`'s assembly (see the module docs).
pub fn asm(code: &CompiledCode) -> Result<Listing, String> {
    let mut bodies: BTreeMap<String, Body<'_>> = BTreeMap::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    // Looked up for every label and call of the file: a set.
    let functions: std::collections::HashSet<&str> = code.asm.lines().filter_map(|l| l.trim().strip_prefix(".type")).filter(|l| l.contains("@function")).map(|l| l.trim().split(',').next().unwrap_or("").trim()).collect();
    for line in code.asm.lines() {
        let trimmed = line.trim();
        if let Some(file) = trimmed.strip_prefix(".file") {
            // `.file 1 "dir" "name"` (DWARF 5) or `.file 1 "path"`.
            let mut words = file.split_whitespace();
            if let Some(number) = words.next().filter(|n| n.chars().all(|c| c.is_ascii_digit())) {
                let names: Vec<&str> = file.split('"').skip(1).step_by(2).collect();
                files.insert(number.to_string(), names.last().copied().unwrap_or_default().to_string());
            }
            continue;
        }
        if let Some(label) = trimmed.strip_suffix(':') {
            if functions.contains(&label) {
                current = Some(label.to_string());
                bodies.insert(label.to_string(), Body { lines: Vec::new(), calls: Vec::new() });
                continue;
            }
        }
        let Some(symbol) = &current else { continue };
        if trimmed.starts_with(".Lfunc_end") || trimmed.starts_with(".size") {
            current = None;
            continue;
        }
        let body = bodies.get_mut(symbol).expect("the current function");
        let mnemonic = trimmed.split_whitespace().next().unwrap_or("");
        if mnemonic == "call" || mnemonic == "jmp" || mnemonic.starts_with('j') {
            if let Some(target) = trimmed.split_whitespace().nth(1) {
                let target = target.trim_end_matches("@PLT");
                if functions.contains(&target) {
                    body.calls.push(target.to_string());
                }
            }
        }
        body.lines.push(line);
    }
    let order = select(&bodies, &code.roots);
    if order.is_empty() {
        return Err(format!("the compiled code of `{}` was not found in its library's assembly", code.name));
    }
    let ours = |file: &str| file == code.source_name || file.ends_with(&format!("/{}", code.source_name));
    let mut out = Vec::new();
    let (mut instructions, mut vector) = (0usize, Vec::new());
    let mut left_out = 0;
    for symbol in &order {
        if out.len() >= MAX_LINES {
            left_out += 1;
            continue;
        }
        let heading = if code.roots.first() == Some(symbol) && symbol.starts_with("__") {
            format!("{}:  ; the library's entry point for `{}`", symbol, code.name)
        } else {
            format!("{}:", demangle(symbol))
        };
        out.push((LineKind::Function, heading));
        let mut last_source: Option<usize> = None;
        for line in &bodies[symbol].lines {
            let trimmed = line.trim();
            if let Some(loc) = trimmed.strip_prefix(".loc") {
                let mut words = loc.split_whitespace();
                let (Some(file), Some(number)) = (words.next(), words.next().and_then(|n| n.parse::<usize>().ok())) else { continue };
                if number != 0 && files.get(file).is_some_and(|f| ours(f)) && last_source != Some(number) {
                    last_source = Some(number);
                    if let Some(comment) = code.comment(number, ";") {
                        out.push((LineKind::Source, format!("    {comment}")));
                    }
                }
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(".Ltmp") || trimmed.starts_with(".Lfunc_begin") {
                continue;
            }
            if trimmed.starts_with('.') && !trimmed.ends_with(':') {
                continue; // directives
            }
            if trimmed.ends_with(':') {
                out.push((LineKind::Label, trimmed.to_string()));
                continue;
            }
            let text = trimmed.split(" #").next().unwrap_or(trimmed);
            let mut parts = text.splitn(2, char::is_whitespace);
            let mnemonic = parts.next().unwrap_or("");
            let operands = parts.next().unwrap_or("").trim();
            let shown = format!("    {mnemonic:<11} {}", demangle_in(operands)).trim_end().to_string();
            instructions += 1;
            match vector_kind(mnemonic, operands) {
                Some(kind) => {
                    vector.push(kind);
                    out.push((LineKind::Vector, shown));
                }
                None => out.push((LineKind::Instruction, shown)),
            }
        }
    }
    if left_out > 0 {
        out.push((LineKind::Note, format!("... and {left_out} more functions it calls (over {MAX_LINES} lines): not shown")));
    }
    Ok(Listing { summary: asm_summary(code, instructions, &vector), lines: out })
}

/// A vector instruction's register width (bits) and element type, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VectorOp {
    bits: u32,
    element: Option<&'static str>,
    integer_or_fma: bool,
}

/// Whether an instruction works on packed vectors (SIMD), and on what.
fn vector_kind(mnemonic: &str, operands: &str) -> Option<VectorOp> {
    let bits = if operands.contains("zmm") {
        512
    } else if operands.contains("ymm") {
        256
    } else if operands.contains("xmm") {
        128
    } else {
        return None;
    };
    let m = mnemonic;
    let broadcast = m.starts_with("vbroadcast") || m.starts_with("vpbroadcast");
    let scalar = !broadcast
        && (m.ends_with("sd") || m.ends_with("ss") || m.contains("sd2") || m.contains("ss2") || m.contains("2sd") || m.contains("2ss") || matches!(m, "movq" | "vmovq" | "movd" | "vmovd"));
    // `vxorpd xmm0, xmm0, xmm0` zeroes a register (for scalar code as much as vector code).
    let zeroing = m.contains("xor") && operands.split(',').map(str::trim).collect::<std::collections::BTreeSet<_>>().len() == 1;
    if scalar || zeroing {
        return None;
    }
    let element = if m.ends_with("pd") || m.ends_with("sd") && broadcast {
        Some("f64")
    } else if m.ends_with("ps") || m.ends_with("ss") && broadcast {
        Some("f32")
    } else if m.starts_with("vp") || m.starts_with('p') {
        match m.chars().last() {
            Some('q') => Some("i64"),
            Some('d') => Some("i32"),
            Some('w') => Some("i16"),
            Some('b') => Some("i8"),
            _ => None,
        }
    } else {
        None
    };
    let integer_or_fma = m.starts_with("vp") || m.starts_with("vfmadd") || m.starts_with("vfnmadd") || m.starts_with("vfmsub");
    Some(VectorOp { bits, element, integer_or_fma })
}

fn asm_summary(code: &CompiledCode, instructions: usize, vector: &[VectorOp]) -> String {
    let head = format!("{} ({}): {instructions} instructions", code.name, code.what);
    if vector.is_empty() {
        return format!("{head}, none of them vector (scalar code)");
    }
    let bits = vector.iter().map(|v| v.bits).max().unwrap_or(128);
    let isa = match bits {
        512 => "AVX-512",
        256 if vector.iter().any(|v| v.bits == 256 && v.integer_or_fma) => "AVX2",
        256 => "AVX",
        _ if vector.iter().all(|v| v.bits == 128) && !vector.is_empty() => "SSE/AVX, 128-bit",
        _ => "SIMD",
    };
    // The most common element type of the widest instructions.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in vector.iter().filter(|v| v.bits == bits) {
        if let Some(e) = v.element {
            *counts.entry(e).or_default() += 1;
        }
    }
    let lanes = counts.iter().max_by_key(|(_, n)| **n).map(|(e, _)| {
        let width: u32 = e[1..].parse().unwrap_or(64);
        format!(", {} x {e}", bits / width)
    });
    format!("{head}, {} of them vector ({isa}{})", vector.len(), lanes.unwrap_or_default())
}

/// The listing of `code`'s LLVM IR (see the module docs).
pub fn llvm(code: &CompiledCode) -> Result<Listing, String> {
    let ir = &code.llvm_ir;
    let mut bodies: BTreeMap<String, Body<'_>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let name_of = |text: &str| -> Option<String> {
        let at = text.find('@')? + 1;
        let rest = &text[at..];
        if let Some(quoted) = rest.strip_prefix('"') {
            return quoted.split('"').next().map(str::to_string);
        }
        Some(rest.chars().take_while(|c| c.is_alphanumeric() || "_$.".contains(*c)).collect())
    };
    for line in ir.lines() {
        if line.starts_with("define ") {
            let name = name_of(line.split('(').next().unwrap_or(line)).unwrap_or_default();
            bodies.insert(name.clone(), Body { lines: vec![line], calls: Vec::new() });
            current = Some(name);
            continue;
        }
        let Some(name) = &current else { continue };
        let body = bodies.get_mut(name).expect("the current function");
        body.lines.push(line);
        if line == "}" {
            current = None;
        } else if line.contains("call ") || line.contains("invoke ") {
            if let Some(callee) = name_of(line.split(" call ").nth(1).or_else(|| line.split("invoke ").nth(1)).unwrap_or("")) {
                body.calls.push(callee);
            }
        }
    }
    let order = select(&bodies, &code.roots);
    if order.is_empty() {
        return Err(format!("the compiled code of `{}` was not found in its library's LLVM IR", code.name));
    }
    // !N = !DILocation(line: L, column: C, scope: !S) and scopes down to their file.
    let metadata: BTreeMap<&str, &str> = ir.lines().filter_map(|l| l.strip_prefix('!')?.split_once(" = ")).collect();
    let field = |text: &str, key: &str| -> Option<String> {
        let at = text.find(&format!("{key}: "))? + key.len() + 2;
        Some(text[at..].split([',', ')']).next()?.trim().trim_matches('"').to_string())
    };
    let ours = |scope: &str| -> bool {
        let mut scope = scope.trim_start_matches('!').to_string();
        for _ in 0..32 {
            let Some(text) = metadata.get(scope.as_str()) else { return false };
            if let Some(file) = field(text, "file") {
                let file_text = metadata.get(file.trim_start_matches('!')).copied().unwrap_or("");
                return field(file_text, "filename").is_some_and(|f| f == code.source_name || f.ends_with(&format!("/{}", code.source_name)));
            }
            match field(text, "scope") {
                Some(outer) => scope = outer.trim_start_matches('!').to_string(),
                None => return false,
            }
        }
        false
    };
    let mut out = Vec::new();
    let (mut instructions, mut vector) = (0usize, 0usize);
    let mut left_out = 0;
    for name in &order {
        if out.len() >= MAX_LINES {
            left_out += 1;
            continue;
        }
        let mut last_source = None;
        for (i, line) in bodies[name].lines.iter().enumerate() {
            let (code_part, dbg) = match line.rfind(", !dbg !") {
                Some(at) => (&line[..at], Some(line[at + 8..].split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))),
                None => (*line, None),
            };
            if let Some(location) = dbg.and_then(|d| metadata.get(d)) {
                let number = field(location, "line").and_then(|l| l.parse::<usize>().ok());
                let in_ours = field(location, "scope").is_some_and(|s| ours(&s));
                if let (Some(number), true) = (number, in_ours) {
                    if last_source != Some(number) {
                        last_source = Some(number);
                        if let Some(comment) = code.comment(number, ";") {
                            out.push((LineKind::Source, format!("  {comment}")));
                        }
                    }
                }
            }
            let shown = demangle_in(code_part.split(" !dbg ").next().unwrap_or(code_part));
            let kind = if i == 0 {
                LineKind::Function
            } else if line.ends_with(':') || line.contains(":  ") && !line.starts_with(' ') {
                LineKind::Label
            } else if line.starts_with("  ") {
                instructions += 1;
                if line.contains(" x ") && line.contains('<') {
                    vector += 1;
                    LineKind::Vector
                } else {
                    LineKind::Instruction
                }
            } else {
                LineKind::Instruction
            };
            out.push((kind, shown));
        }
    }
    if left_out > 0 {
        out.push((LineKind::Note, format!("... and {left_out} more functions it calls (over {MAX_LINES} lines): not shown")));
    }
    let summary = format!("{} ({}): {instructions} IR instructions, {vector} of them on vectors (<N x type>)", code.name, code.what);
    Ok(Listing { summary, lines: out })
}

#[cfg(test)]
mod tests;
