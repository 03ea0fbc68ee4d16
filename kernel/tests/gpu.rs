//! `#[vectorize(target = "cuda")]` on a real GPU: the kernel's NVRTC build, its exported CUDA
//! functions and the runtime's device arrays, called the way a cell's wrapper calls them.
//!
//! Without a GPU each test prints why it was skipped and passes (`RJK_REQUIRE_GPU=1` makes that
//! a failure). A GPU host may have no Rust toolchain: `cargo test --release --no-run` builds
//! this file as a plain binary (`target/release/deps/gpu-<hash>`) to copy there and run, with
//! libnvrtc on `LD_LIBRARY_PATH`.

use jit::cuda::{self, CudaArg, DeviceArray, Image, Join, Output, Place};
use jit::ndarray::{array, Array1, Array2, DimMax, Dimension, Ix1};
use rust_jit_kernel::cuda::nvrtc::{build, Image as Built};

fn gpu_or_skip() -> bool {
    rust_jit_kernel::exports::keep();
    match cuda::device() {
        Ok(name) => {
            eprintln!("GPU: {name}");
            true
        }
        Err(why) => {
            assert!(std::env::var_os("RJK_REQUIRE_GPU").is_none(), "RJK_REQUIRE_GPU is set, but: {why}");
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// The kernel of the one `#[vectorize(target = "cuda")]` function in `cell`, built by the
/// kernel's NVRTC step, and the kernel's name.
fn kernel(cell: &str) -> (&'static Image, &'static std::ffi::CStr) {
    let split = jit_codegen::split(cell).expect("a cell that splits");
    let source = split.functions[0].vectorize.as_ref().and_then(|u| u.cuda.clone()).expect("a cuda function");
    let cache = std::env::temp_dir().join(format!("rjk-gpu-test-{}", std::process::id()));
    let built = build(&source, cell, &rust_jit_kernel::cache::Caches::own_only(&cache)).unwrap_or_else(|e| panic!("{}: {:?}", e.evalue, e.traceback));
    let Built::Ready { path, .. } = built else { panic!("NVRTC is not available: {built:?}") };
    let bytes: &'static [u8] = Box::leak(std::fs::read(path).expect("the image").into_boxed_slice());
    let name = std::ffi::CString::new(source.kernel).expect("a C name");
    (Box::leak(Box::new(Image::Ready(bytes))), Box::leak(name.into_boxed_c_str()))
}

/// What the generated wrapper of a two-argument ufunc does (see `jit_codegen::vectorize`).
fn call2<O: cuda::Scalar, X0: CudaArg, X1: CudaArg>(k: (&Image, &std::ffi::CStr), a: X0, b: X1) -> Output<<X0::Place as Join<X1::Place>>::Out, O, <X0::Dim as DimMax<X1::Dim>>::Output>
where
    X0::Dim: DimMax<X1::Dim>,
    X0::Place: Join<X1::Place>,
{
    // SAFETY: the image has the kernel, with two inputs of these element types and output O.
    let out = unsafe { cuda::launch::<O>(k.0, k.1, &[&a.operand(), &b.operand()]) };
    <<X0::Place as Join<X1::Place>>::Out as Place>::finish::<O, <X0::Dim as DimMax<X1::Dim>>::Output>(out)
}

const ADD: &str = "#[vectorize(target = \"cuda\")]\nfn add_ufunc(x: i64, y: i64) -> i64 { x + y }";

/// The lesson's `add_ufunc` kernel, or `None` (the test is skipped) without a GPU.
fn add_kernel() -> Option<(&'static Image, &'static std::ffi::CStr)> {
    gpu_or_skip().then(|| kernel(ADD))
}

#[test]
fn host_arrays_go_to_the_gpu_and_back_with_broadcasting() {
    let Some(add) = add_kernel() else { return };
    let a = Array1::from_iter(0..1_000_003i64);
    let b = &a * 3;
    let sum: Array1<i64> = call2(add, &a, &b);
    assert_eq!(sum, &a + &b);
    let column: Array2<i64> = array![[1], [2], [3]];
    let row = array![10i64, 20, 30, 40];
    let grid: Array2<i64> = call2(add, &column, &row);
    assert_eq!(grid, &column + &row);
    let plus_one: Array1<i64> = call2(add, &a, 1i64);
    assert_eq!(plus_one, &a + 1);
    let empty: Array1<i64> = call2(add, Array1::<i64>::zeros(0), 5i64);
    assert!(empty.is_empty());
}

#[test]
fn device_arrays_stay_on_the_gpu() {
    let Some(add) = add_kernel() else { return };
    let a = Array1::from_iter(0..10_000i64);
    let (da, db) = (cuda::to_device(&a), cuda::to_device(&a));
    let on_device: DeviceArray<i64, Ix1> = call2(add, &da, &db);
    assert_eq!(on_device.shape(), &[10_000]);
    assert_eq!(on_device.to_host(), &a * 2);
    // A host operand with a device one: the result stays on the GPU.
    let mixed: DeviceArray<i64, Ix1> = call2(add, &on_device, 7i64);
    assert_eq!(mixed.to_host(), &a * 2 + 7);
    assert!(format!("{mixed:?}").contains("DeviceArray<i64> of shape [10000] on the GPU"));
    let short = cuda::to_device(&array![1i64, 2]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: DeviceArray<i64, Ix1> = call2(add, &da, &short);
    }));
    let message = caught.unwrap_err().downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("could not broadcast") || message.contains("does not broadcast"), "{message}");
}

#[test]
fn float_math_and_bools_match_the_cpu() {
    if !gpu_or_skip() {
        return;
    }
    let cell = "#[vectorize(target = \"cuda\")]\nfn f(x: f64, n: i32) -> f64 {\n    let y = if x > 1.0 { x.sqrt() } else { x.powi(n) };\n    y.tanh() + x.ln_1p()\n}";
    let f = kernel(cell);
    let x: Array1<f64> = Array1::linspace(0.0, 4.0, 4097);
    let got: Array1<f64> = call2(f, &x, 3i32);
    let want = x.mapv(|x: f64| (if x > 1.0 { x.sqrt() } else { x.powi(3) }).tanh() + x.ln_1p());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
    let less = kernel("#[vectorize(target = \"cuda\")]\nfn less(a: f32, b: f32) -> bool { a < b }");
    let y = Array1::from_iter((0..100).map(|i| i as f32));
    let flags: Array1<bool> = call2(less, &y, 50.0f32);
    assert_eq!(flags, y.mapv(|v| v < 50.0));
}

#[allow(dead_code)]
fn dims_are_generic<D: Dimension>(_: D) {}
