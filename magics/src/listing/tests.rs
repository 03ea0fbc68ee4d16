//! Golden tests of the listings on a fixed assembly and IR text.
    use super::*;

    /// A library of three functions as rustc writes it (trimmed): the entry point calls
    /// `helper`, whose loop is vectorised; `unused` is called by nobody.
    const ASM: &str = "\t.text
\t.file\t\"jit_f_0.abc-cgu.0\"
\t.section\t.text._ZN7jit_f_06helper17h0123456789abcdefE,\"ax\",@progbits
\t.p2align\t4
\t.type\t_ZN7jit_f_06helper17h0123456789abcdefE,@function
_ZN7jit_f_06helper17h0123456789abcdefE:
.Lfunc_begin0:
\t.file\t1 \"/rustlib/src/rust/library/core/src/slice/iter\" \"macros.rs\"
\t.loc\t1 10 0
\t.cfi_startproc
\ttest\trsi, rsi
\tje\t.LBB0_3
\t.file\t2 \"jit_f_0.rs\"
\t.loc\t2 3 20 prologue_end
\tvbroadcastsd\tymm1, xmm0
.LBB0_2:
\tvaddpd\tymm2, ymm1, ymmword ptr [rdi + 8*rax]
\tvmovupd\tymmword ptr [rdx + 8*rax], ymm2
\tadd\trax, 4
\tcmp\trax, rsi
\tjne\t.LBB0_2
.LBB0_3:
\tvzeroupper
\tret
.Lfunc_end0:
\t.size\t_ZN7jit_f_06helper17h0123456789abcdefE, .Lfunc_end0-_ZN7jit_f_06helper17h0123456789abcdefE
\t.cfi_endproc

\t.type\t_ZN7jit_f_06unused17hfedcba9876543210E,@function
_ZN7jit_f_06unused17hfedcba9876543210E:
.Lfunc_begin1:
\tlea\trax, [rdi + 2*rdi]
\tret
.Lfunc_end1:

\t.globl\t__jit_f_0
\t.type\t__jit_f_0,@function
__jit_f_0:
.Lfunc_begin2:
\t.loc\t2 5 0
\t.cfi_startproc
\tpush\trax
\t.loc\t2 6 5 prologue_end
\tvxorpd\txmm0, xmm0, xmm0
\tvcvtsi2sd\txmm0, xmm0, rsi
\tcall\t_ZN7jit_f_06helper17h0123456789abcdefE
\t.loc\t2 7 5
\tvaddsd\txmm0, xmm0, qword ptr [rip + .LCPI2_0]  # a comment
\tpop\trax
\tret
.Lfunc_end2:
";

    const IR: &str = r#"; ModuleID = 'jit_f_0.abc-cgu.0'
define internal fastcc void @_ZN7jit_f_06helper17h0123456789abcdefE(ptr %x, i64 %n, double %t) unnamed_addr #0 !dbg !5 {
start:
  %b = insertelement <4 x double> poison, double %t, i64 0, !dbg !8
  %s = fadd <4 x double> %b, %b, !dbg !8
  ret void, !dbg !9
}

define i64 @_ZN7jit_f_06unused17hfedcba9876543210E(i64 %x) unnamed_addr #0 {
start:
  %r = mul i64 %x, 3
  ret i64 %r
}

define double @__jit_f_0(ptr %x, i64 %n) unnamed_addr #1 !dbg !10 {
start:
  %t = uitofp i64 %n to double, !dbg !11
  tail call fastcc void @_ZN7jit_f_06helper17h0123456789abcdefE(ptr %x, i64 %n, double %t), !dbg !12
  %r = fadd double %t, 1.0, !dbg !13
  ret double %r, !dbg !13
}

!2 = !DIFile(filename: "jit_f_0.rs", directory: "")
!5 = distinct !DISubprogram(name: "helper", scope: !2, file: !2, line: 3, unit: !1)
!8 = !DILocation(line: 3, column: 50, scope: !5)
!9 = !DILocation(line: 3, column: 90, scope: !5)
!10 = distinct !DISubprogram(name: "__jit_f_0", scope: !2, file: !2, line: 9, unit: !1)
!11 = !DILocation(line: 6, column: 13, scope: !14)
!12 = !DILocation(line: 7, column: 5, scope: !14)
!13 = !DILocation(line: 7, column: 18, scope: !14)
!14 = distinct !DISubprogram(name: "f", scope: !2, file: !2, line: 5, unit: !1)
"#;

    fn code() -> CompiledCode {
        let written = "fn f(x: &[f64]) -> f64 {\n    let t = x.len() as f64;\n    helper(x, t) + 1.0\n}";
        CompiledCode {
            name: "f".into(),
            what: "#[jit]".into(),
            asm: ASM.into(),
            llvm_ir: IR.into(),
            roots: vec!["__jit_f_0".into(), "jit_f_0::f".into()],
            source: format!("#![allow(unused_imports, dead_code)]\nuse jit::prelude::*;\nfn helper(x: &[f64], t: f64) {{ }}\n\n{written}\n"),
            source_name: "jit_f_0.rs".into(),
            first_line: 5,
            cell_line: 2,
            written: written.into(),
        }
    }

    #[test]
    fn assembly_selects_demangles_and_interleaves_the_cell() {
        let listing = asm(&code()).unwrap();
        assert_eq!(listing.summary, "f (#[jit]): 17 instructions, 3 of them vector (AVX, 4 x f64)");
        let expected = "\
__jit_f_0:  ; the library's entry point for `f`
    ; cell line 2: fn f(x: &[f64]) -> f64 {
    push        rax
    ; cell line 3: let t = x.len() as f64;
    vxorpd      xmm0, xmm0, xmm0
    vcvtsi2sd   xmm0, xmm0, rsi
    call        jit_f_0::helper
    ; cell line 4: helper(x, t) + 1.0
    vaddsd      xmm0, xmm0, qword ptr [rip + .LCPI2_0]
    pop         rax
    ret

jit_f_0::helper:
    test        rsi, rsi
    je          .LBB0_3
    ; fn helper(x: &[f64], t: f64) { }
    vbroadcastsd ymm1, xmm0
.LBB0_2:
    vaddpd      ymm2, ymm1, ymmword ptr [rdi + 8*rax]
    vmovupd     ymmword ptr [rdx + 8*rax], ymm2
    add         rax, 4
    cmp         rax, rsi
    jne         .LBB0_2
.LBB0_3:
    vzeroupper
    ret
";
        assert_eq!(listing.text(), format!("{}\n\n{expected}", listing.summary));
        let vector: Vec<&str> = listing.lines.iter().filter(|(k, _)| *k == LineKind::Vector).map(|(_, l)| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(vector, ["vbroadcastsd", "vaddpd", "vmovupd"]);
        assert!(!listing.text().contains("unused"), "only what the entry point reaches");
        let html = listing.html();
        assert!(html.contains("<span style=\"background-color:#fff3b0;color:#7a3e00;font-weight:bold\">    vaddpd "), "{html}");
        assert!(html.contains("; cell line 2: fn f(x: &amp;[f64]) -&gt; f64 {"), "escaped: {html}");
    }

    #[test]
    fn llvm_ir_selects_demangles_and_interleaves_the_cell() {
        let listing = llvm(&code()).unwrap();
        assert_eq!(listing.summary, "f (#[jit]): 7 IR instructions, 2 of them on vectors (<N x type>)");
        let text = listing.text();
        let shim = text.find("define double @__jit_f_0").unwrap();
        let helper = text.find("define internal fastcc void @jit_f_0::helper(").unwrap();
        assert!(shim < helper, "{text}");
        assert!(text.contains("  ; cell line 3: let t = x.len() as f64;\n  %t = uitofp i64 %n to double\n  ; cell line 4: helper(x, t) + 1.0\n  tail call fastcc void @jit_f_0::helper(ptr %x, i64 %n, double %t)\n"), "{text}");
        assert!(!text.contains("!dbg") && !text.contains("unused"), "{text}");
    }

    #[test]
    fn what_counts_as_vector() {
        let v = |m: &str, o: &str| vector_kind(m, o).is_some();
        assert!(v("vaddpd", "ymm0, ymm1, ymm2") && v("vmulps", "zmm0, zmm1, zmm2") && v("vpaddq", "xmm0, xmm1, xmm2"));
        assert!(v("vbroadcastsd", "ymm0, xmm1") && v("vmovupd", "ymmword ptr [rax], ymm0"));
        assert!(!v("vaddsd", "xmm0, xmm0, xmm1") && !v("vucomisd", "xmm0, xmm1") && !v("vcvttsd2si", "rax, xmm0"));
        assert!(!v("vxorps", "xmm0, xmm0, xmm0") && !v("add", "rax, 1") && !v("vmovq", "rax, xmm0"));
        let op = vector_kind("vfmadd231pd", "ymm0, ymm1, ymm2").unwrap();
        assert_eq!((op.bits, op.element, op.integer_or_fma), (256, Some("f64"), true));
    }

    #[test]
    fn missing_code_and_demangling() {
        let none = CompiledCode { roots: vec!["nothing".into()], ..code() };
        assert!(asm(&none).unwrap_err().contains("not found"));
        assert_eq!(demangle("_ZN7jit_f_06helper17h0123456789abcdefE"), "jit_f_0::helper");
        assert_eq!(demangle("tanh"), "tanh");
        assert_eq!(demangle_in("call _ZN7jit_f_06helper17h0123456789abcdefE@PLT"), "call jit_f_0::helper@PLT");
    }
