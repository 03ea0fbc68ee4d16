//! The GPU benchmark of issue 5: a 10^7-element int64 add on device arrays, as the lesson's
//! `add_ufunc(&da, &db)` runs it (the kernel's NVRTC build, the runtime's launch, which waits
//! for the kernel), against the GPU's memory-bandwidth limit. `bench/gpu_bench.py` runs this
//! binary (built with `cargo bench --no-run`, runnable on a GPU host with no Rust toolchain)
//! and numba-cuda's `@vectorize(target='cuda')` in the same run.
//!
//! Prints one JSON object. Without a GPU it says why and exits 0.

use std::time::Instant;

use cudarc::driver::{result as cu, sys};
use jit::cuda::{self, CudaArg, DeviceArray, Image};
use jit::ndarray::{Array1, Ix1, IxDyn};

fn main() {
    rust_jit_kernel::exports::keep();
    let name = match cuda::device() {
        Ok(name) => name,
        Err(why) => {
            println!("{{\"skipped\": {why:?}}}");
            return;
        }
    };
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let repeats: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let started = Instant::now();
    let (image, target) = built("#[vectorize(target = \"cuda\")]\nfn add_ufunc(x: i64, y: i64) -> i64 { x + y }");
    let nvrtc_s = started.elapsed().as_secs_f64();
    let kernel = c"add_ufunc_kernel";

    let a = Array1::from_iter(0..n as i64);
    let b = Array1::from_iter((0..n as i64).map(|x| 2 * x));
    let (da, db) = (cuda::to_device(&a), cuda::to_device(&b));
    // SAFETY (the launches below): the image has this kernel, two i64 inputs and an i64 output.
    let add = |x: &DeviceArray<i64, Ix1>, y: &DeviceArray<i64, Ix1>| -> DeviceArray<i64, IxDyn> { unsafe { cuda::launch::<i64>(&image, kernel, &[&x.operand(), &y.operand()]) } };
    let check = add(&da, &db).to_host();
    assert!(check.iter().zip(a.iter().zip(&b)).all(|(s, (x, y))| *s == x + y), "wrong sums");

    let time = |f: &mut dyn FnMut()| -> Vec<f64> {
        for _ in 0..10 {
            f();
        }
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect()
    };
    let mut device_call = time(&mut || drop(add(&da, &db)));
    let mut host_call = time(&mut || drop(unsafe { cuda::launch::<i64>(&image, kernel, &[&a.operand(), &b.operand()]) }.to_host()));

    // The kernel alone, timed with CUDA events on the GPU (no allocation, no host overhead).
    let out = cuda::to_device(&Array1::<i64>::zeros(n));
    let params = [n as u64, da.device_ptr(), 1, db.device_ptr(), 1, out.device_ptr()];
    let Image::Ready(bytes) = &image else { unreachable!() };
    let mut kernel_only: Vec<f64> = (0..repeats + 10)
        // SAFETY: the parameters match the kernel's; the buffers hold n elements each.
        .map(|_| unsafe { kernel_time_us(bytes, kernel, n as u64, &params) } * 1e-6)
        .skip(10)
        .collect();

    // The limit: bytes moved (two reads, one write) at the memory's peak rate, from the
    // device's attributes; and what a device-to-device copy of the same bytes reaches.
    let (clock_khz, bus_bits) = unsafe {
        let device = cu::device::get(0).expect("device");
        (
            cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).unwrap_or(0) as f64,
            cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH).unwrap_or(0) as f64,
        )
    };
    let peak = 2.0 * clock_khz * 1e3 * bus_bits / 8.0;
    assert!(peak > 0.0, "the device reports no memory clock or bus width");
    let bytes = 3.0 * 8.0 * n as f64;
    let big = cuda::to_device(&Array1::<i64>::zeros(3 * n / 2));
    // A one-input ufunc (`x`): the same launch path, moving the same bytes as the add.
    let (copy_image, _) = built("#[vectorize(target = \"cuda\")]\nfn copy(x: i64) -> i64 { x }");
    let mut copy = time(&mut || {
        // Reads and writes 1.5 n elements: the add's 3 n element transfers.
        // SAFETY: the image has copy_kernel, one i64 input, an i64 output.
        let copied = unsafe { cuda::launch::<i64>(&copy_image, c"copy_kernel", &[&big.operand()]) };
        drop(copied);
    });
    for v in [&mut device_call, &mut host_call, &mut copy, &mut kernel_only] {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
    }
    let us = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize] * 1e6;
    println!(
        "{{\"gpu\": {name:?}, \"target\": {target:?}, \"n\": {n}, \"repeats\": {repeats}, \"nvrtc_s\": {nvrtc_s:.4}, \
         \"kernel_us\": {{\"min\": {:.1}, \"median\": {:.1}}}, \"device_call_us\": {{\"min\": {:.1}, \"median\": {:.1}}}, \"host_call_us\": {{\"min\": {:.1}, \"median\": {:.1}}}, \
         \"copy_kernel_us\": {{\"min\": {:.1}, \"median\": {:.1}}}, \"peak_bandwidth_gbs\": {:.1}, \"bandwidth_limit_us\": {:.1}}}",
        us(&kernel_only, 0.0),
        us(&kernel_only, 0.5),
        us(&device_call, 0.0),
        us(&device_call, 0.5),
        us(&host_call, 0.0),
        us(&host_call, 0.5),
        us(&copy, 0.0),
        us(&copy, 0.5),
        peak / 1e9,
        bytes / peak * 1e6
    );
}

/// The kernel of the cell's cuda ufunc, built by the kernel's NVRTC step, and its target.
fn built(cell: &str) -> (Image, String) {
    let split = jit_codegen::split(cell).expect("a cell with a cuda ufunc");
    let source = split.functions[0].vectorize.as_ref().and_then(|u| u.cuda.clone()).expect("cuda");
    let built = rust_jit_kernel::cuda::nvrtc::build(&source, cell, &rust_jit_kernel::cache::Caches::own_only(&std::env::temp_dir().join("rjk-gpu-bench"))).unwrap_or_else(|e| panic!("{}", e.evalue));
    let rust_jit_kernel::cuda::nvrtc::Image::Ready { path, target, .. } = built else { panic!("no NVRTC: {built:?}") };
    (Image::Ready(Box::leak(std::fs::read(path).expect("the image").into_boxed_slice())), target)
}

/// One launch of `kernel` of `image` over `n` elements, as the runtime's launch makes it (256
/// threads a block, at most 32 blocks per multiprocessor), timed with CUDA events around the
/// kernel alone on a stream of the benchmark's own: no allocation, no copies, no host overhead.
/// In microseconds.
///
/// # Safety
/// `params` match the kernel's parameters; its pointers are live device memory of `n` elements.
unsafe fn kernel_time_us(image: &[u8], kernel: &std::ffi::CStr, n: u64, params: &[u64]) -> f64 {
    use std::ffi::c_void;
    let check = |what: &str, r: Result<(), cu::DriverError>| r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    // SAFETY: per the caller; the module, stream and events live for the process.
    unsafe {
        let device = cu::device::get(0).expect("device");
        let context = cu::primary_ctx::retain(device).expect("the primary context");
        check("cuCtxSetCurrent", cu::ctx::set_current(context));
        let mut aligned = vec![0u64; image.len().div_ceil(8)];
        std::ptr::copy_nonoverlapping(image.as_ptr(), aligned.as_mut_ptr() as *mut u8, image.len());
        let module = cu::module::load_data(aligned.as_ptr() as *const c_void).expect("cuModuleLoadData");
        let function = cu::module::get_function(module, kernel.to_owned()).expect("cuModuleGetFunction");
        let stream = cu::stream::create(cu::stream::StreamKind::NonBlocking).expect("cuStreamCreate");
        let sms = cu::device::get_attribute(device, sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).expect("SM count") as u64;
        let blocks = n.div_ceil(256).clamp(1, sms * 32) as u32;
        let mut values = params.to_vec();
        let mut pointers: Vec<*mut c_void> = values.iter_mut().map(|v| v as *mut u64 as *mut c_void).collect();
        let event = || cu::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT).expect("cuEventCreate");
        let (start, end) = (event(), event());
        check("cuEventRecord", cu::event::record(start, stream));
        check("cuLaunchKernel", cu::launch_kernel(function, (blocks, 1, 1), (256, 1, 1), 0, stream, &mut pointers));
        check("cuEventRecord", cu::event::record(end, stream));
        check("cuStreamSynchronize", cu::stream::synchronize(stream));
        let ms = cu::event::elapsed(start, end).expect("cuEventElapsedTime");
        let _ = (cu::event::destroy(start), cu::event::destroy(end), cu::stream::destroy(stream), cu::module::unload(module));
        ms as f64 * 1e3
    }
}
