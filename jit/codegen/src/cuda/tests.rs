use super::*;

fn cuda(source: &str) -> String {
    let item: syn::ItemFn = syn::parse_str(source).unwrap();
    let out = translate(&item, 10).unwrap();
    proc_macro2::extra::invalidate_current_thread_spans();
    out.text
}

/// The CUDA C without its `#line` directives.
fn code(source: &str) -> String {
    cuda(source).lines().filter(|l| !l.starts_with("#line")).map(|l| format!("{l}\n")).collect()
}

fn error(source: &str) -> (String, usize, usize) {
    let item: syn::ItemFn = syn::parse_str(source).unwrap();
    let e = translate(&item, 1).unwrap_err();
    let at = (e.span.start().line, e.span.start().column);
    proc_macro2::extra::invalidate_current_thread_spans();
    (e.message, at.0, at.1)
}

#[test]
fn the_lessons_add_ufunc() {
    assert_eq!(
        cuda("fn add_ufunc(x: i64, y: i64) -> i64 { x + y }"),
        "__device__ long long f_add_ufunc(long long v_x, long long v_y) {\n\
         #line 10 \"cell\"\n    return (v_x + v_y);\n}\n\n\
         extern \"C\" __global__ void add_ufunc_kernel(unsigned long long n, const long long *__restrict__ in0, unsigned long long step0, const long long *__restrict__ in1, unsigned long long step1, long long *__restrict__ out) {\n    \
         for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n         \
         i += (unsigned long long)blockDim.x * gridDim.x) {\n        out[i] = f_add_ufunc(in0[i * step0], in1[i * step1]);\n    }\n}\n"
    );
}

#[test]
fn lets_ifs_casts_and_math() {
    let lines = cuda("fn f(x: f32) -> f32 {\n    let y = x;\n    y\n}");
    assert!(lines.contains("#line 11 \"cell\"\n    float v_y_1 = v_x;\n#line 12 \"cell\"\n    return v_y_1;"), "{lines}");
    let text = code(
        "fn f(x: f32, n: i32) -> f32 {\n    let mut y = x * 2.0;\n    y += 1.0;\n    let k = n as f32;\n    \
         if y > 3.0 { y = y.sqrt(); }\n    let z = if n > 0 { y.powi(n) } else { y.tanh() };\n    \
         if z.is_nan() { return 0.0; }\n    z.max(k).abs() / 2.0\n}",
    );
    for expected in [
        "    float v_y_1 = (v_x * 2.0f);\n",
        "    v_y_1 += 1.0f;\n",
        "    float v_k_2 = ((float) (v_n));\n",
        "    if ((v_y_1 > 3.0f)) {\n",
        "        v_y_1 = sqrtf(v_y_1);\n",
        "    float v_z_3 = ((v_n > 0) ? powf(v_y_1, (float) (v_n)) : tanhf(v_y_1));\n",
        "    if (isnan(v_z_3)) {\n        return 0.0f;\n",
        "    return (fabsf(fmaxf(v_z_3, v_k_2)) / 2.0f);\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn ifs_with_statements_as_values_and_in_return_position() {
    let text = code("fn g(a: i64, b: i64) -> i64 {\n    let m = if a > b { let d = a - b; d * d } else { 0 };\n    if m > 10 { m } else { -m }\n}");
    let ints = code("fn h(a: u32, b: bool) -> u32 { if b && a % 2 == 0 { a.pow(3) } else { !a } }");
    for (text, expected) in [
        (&text, "long long v_m_2 = [&]() -> long long {\n"),
        (&text, "long long v_d_1 = (v_a - v_b);"),
        (&text, "return 0LL;"),
        (&text, "    if ((v_m_2 > 10LL)) {\n"),
        (&text, "        return -(v_m_2);\n"),
        (&ints, "(v_b && ((v_a % 2U) == 0U))"),
        (&ints, "return ~(v_a);"),
        (&ints, "for (unsigned int e = 3U; e; e >>= 1)"),
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

/// Every construct the translation supports, through NVRTC (no GPU needed: libnvrtc from
/// the PyPI package `nvidia-cuda-nvrtc`, which the test command installs and puts on
/// `LD_LIBRARY_PATH`, setting `RJK_REQUIRE_NVRTC`). Without libnvrtc and without that
/// variable the test says it was skipped.
#[test]
fn generated_kernels_compile_with_nvrtc() {
    // SAFETY: only looks for the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        assert!(std::env::var_os("RJK_REQUIRE_NVRTC").is_none(), "libnvrtc not found: put nvidia/cu13/lib of `pip install nvidia-cuda-nvrtc` on LD_LIBRARY_PATH");
        eprintln!("skipped: libnvrtc not found (pip install nvidia-cuda-nvrtc, then its nvidia/cu13/lib on LD_LIBRARY_PATH)");
        return;
    }
    let corpus = [
        "fn add_ufunc(x: i64, y: i64) -> i64 { x + y }",
        "fn f(x: f32, n: i32) -> f32 {\n    let mut y = x * 2.0;\n    y += 1.0;\n    let k = n as f32;\n    if y > 3.0 { y = y.sqrt(); }\n    let z = if n > 0 { y.powi(n) } else { y.tanh() };\n    if z.is_nan() { return 0.0; }\n    z.max(k).abs() / 2.0\n}",
        "fn g(a: i64, b: i64) -> i64 {\n    let m = if a > b { let d = a - b; d * d } else { 0 };\n    if m > 10 { m } else { -m }\n}",
        "fn h(a: u32, b: bool) -> u32 { if b && a % 2 == 0 { a.pow(3) } else { !a } }",
        "fn m(x: f64, y: f64) -> f64 { (x.exp() + y.ln()).min(x.sin() * y.cos()).max(x.atan2(y)).mul_add(2.0, x.hypot(y)) + x.powf(y) + x.abs().recip() + x.cbrt() + x.floor() + x.exp_m1() + y.ln_1p() }",
        "fn b(x: i32, y: u64) -> bool { x.abs() > 3 || (y as i32).min(x) == x.max(2) && !(x < 0) }",
        "fn c(x: u64, y: i32) -> f32 { let mut s = (x as f32) / (y as f32); s -= 1.5; s *= 2.0; { let t = s; s = t + (y.abs() as f32); } s }",
        "fn d(x: f32) -> f32 { x.sin().cos().tan().asin().acos().atan().sinh().cosh().tanh().exp2().log2().log10().ceil().round().trunc().copysign(-1.0) }",
        "fn e(x: i64, y: u64) -> u64 { ((x.abs() as u64) << 2 | y >> 1) ^ (y & 7) % 5 }",
        "fn s(x: f64) -> f64 {\n    let x = x.abs();\n    let mut acc = 0;\n    acc += 3i64;\n    let r = x % 2.0;\n    r * acc as f64\n}",
        "fn p(x: i64) -> bool { x & 1 == 0 && - -x > 0 }",
    ];
    for source in corpus {
        let item: syn::ItemFn = syn::parse_str(source).unwrap();
        let cuda = translate(&item, 1).unwrap();
        proc_macro2::extra::invalidate_current_thread_spans();
        if let Err(error) = cudarc::nvrtc::compile_ptx(cuda.text.clone()) {
            panic!("NVRTC rejected the translation of\n{source}\n{}\n{error:?}", cuda.text);
        }
    }
}

#[test]
fn precedence_shadowing_float_remainder_and_integer_lets() {
    // Rust ranks `&` above `==`; C below: the parentheses keep Rust's meaning.
    assert!(code("fn is_even(x: i64) -> bool { x & 1 == 0 }").contains("return ((v_x & 1LL) == 0LL);"));
    // `let x = x.abs();` reads the parameter, then shadows it.
    let shadow = code("fn f(x: f64) -> f64 {\n    let x = x.abs();\n    let x = x * 2.0;\n    x\n}");
    assert!(shadow.contains("double v_x_1 = fabs(v_x);\n    double v_x_2 = (v_x_1 * 2.0);\n    return v_x_2;"), "{shadow}");
    assert!(code("fn r(x: f32) -> f32 { let mut y = x % 2.0; y %= 1.5; y }").contains("v_y_1 = fmodf(v_y_1, 1.5f);"));
    // An integer `let` takes its type from later uses, or from being the returned value.
    let acc = code("fn s(x: i64) -> i64 {\n    let mut acc = 0;\n    acc += x * 3;\n    acc\n}");
    assert!(acc.contains("long long v_acc_1 = 0LL;"), "{acc}");
    assert!(code("fn t(x: u32) -> u64 {\n    let k = 7;\n    k\n}").contains("unsigned long long v_k_1 = 7ULL;"));
    let (unknown, line, _) = error("fn u(x: f64) -> bool {\n    let k = 7;\n    x > 1.0\n}");
    assert!(unknown.contains("the type of `k` is not known here"), "{unknown}");
    assert_eq!(line, 2);
    let (inside, _, _) = error("fn v(x: f64) -> f64 {\n    let y = if x > 0.0 { x } else { return 0.0; };\n    y\n}");
    assert!(inside.contains("`return` inside a block or `if` used as a value"), "{inside}");
}

#[test]
fn unsupported_constructs_are_named_and_located() {
    for (source, message, line) in [
        ("fn f(x: i64) -> i64 {\n    let mut s: i64 = 0;\n    for i in 0..x { s += i; }\n    s\n}", "a `for` loop", 3),
        ("fn f(x: f64) -> f64 {\n    helper(x)\n}", "a function call", 2),
        ("fn f(x: f64) -> f64 {\n    println!(\"{}\", x);\n    x\n}", "a macro", 2),
        ("fn f(x: f64) -> f64 {\n    x.sin_cos().0\n}", "a field", 2),
        ("fn f(x: f64) -> f64 {\n    x.frobnicate()\n}", "the method `frobnicate` on f64", 2),
        ("fn f(x: f64) -> f64 {\n    x + y\n}", "`y` is not a parameter", 2),
        ("fn f(x: &[f64]) -> f64 { 0.0 }", "takes and returns scalars", 1),
        ("fn f(x: f64) -> String { x }", "takes and returns scalars", 1),
    ] {
        let (got, at_line, _) = error(source);
        assert!(got.contains(message), "{source}: {got}");
        assert_eq!(at_line, line, "{source}: {got}");
    }
}
