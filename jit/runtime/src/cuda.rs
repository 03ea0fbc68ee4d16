//! `#[vectorize(target = "cuda")]` at run time: device arrays and kernel launches (Numba's
//! `cuda.to_device`, `.copy_to_host()`).
//!
//! **The GPU is the kernel's, not this crate's.** As with the thread pool (see `pool.rs`),
//! every cell and every jit library has its own copy of this crate, while a CUDA context,
//! its memory and its loaded modules must be one per process. The kernel binary (which is
//! also the process that runs the cells) drives the GPU through cudarc and exports a few C
//! functions (`rjk_cuda_*`, kernel/src/cuda/driver.rs); this crate finds them with `dlsym`. Only
//! integers, pointers and bytes cross that boundary. Outside the kernel every call is a
//! "CUDA is not available" error.
//!
//! A device array is one allocation in the GPU's memory in standard (C) order; dropping it
//! frees it. A call of a cuda ufunc ([`launch`], from the crate of the function) copies host
//! operands to the GPU (a broadcast host operand is made contiguous first; one with a single
//! element is passed with step 0), launches the kernel over every element and waits for it.
//! On host operands only, the result comes back to the host; with any device operand it stays
//! on the GPU ([`Join`]).
//!
//! Errors panic with a message that starts with `CudaError: ` (the kernel shows it as a
//! `CudaError`): the cell fails, the session and its variables stay.

use std::ffi::{c_char, c_void, CStr};
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use ndarray::{Array, ArrayBase, ArrayViewD, Data, Dimension, IxDyn};

use crate::ufunc::Arg;

/// What to do without a GPU, said once at the end of every "not available" message.
pub const USE_CPU: &str = "use target = \"cpu\" or \"parallel\"";

// The kernel's functions (kernel/src/cuda/driver.rs). Each returns 0 on success; on failure the
// message is kept for `rjk_cuda_error` on the same thread.
type DeviceFn = unsafe extern "C" fn(name: *mut u8, capacity: usize) -> usize;
type AllocFn = unsafe extern "C" fn(bytes: usize, ptr: *mut u64) -> i32;
type FreeFn = unsafe extern "C" fn(ptr: u64);
type UploadFn = unsafe extern "C" fn(dst: u64, src: *const u8, bytes: usize) -> i32;
type DownloadFn = unsafe extern "C" fn(dst: *mut u8, src: u64, bytes: usize) -> i32;
type LaunchFn = unsafe extern "C" fn(image: *const u8, len: usize, kernel: *const c_char, n: u64, params: *const u64, count: usize) -> i32;
type ErrorFn = unsafe extern "C" fn(buffer: *mut u8, capacity: usize) -> usize;

struct Host {
    device: DeviceFn,
    alloc: AllocFn,
    free: FreeFn,
    upload: UploadFn,
    download: DownloadFn,
    launch: LaunchFn,
    error: ErrorFn,
}

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

fn host() -> Result<&'static Host, String> {
    static HOST: OnceLock<Option<Host>> = OnceLock::new();
    let found = HOST.get_or_init(|| {
        let find = |name: &CStr| {
            // SAFETY: dlsym with RTLD_DEFAULT (null) and a NUL-terminated name.
            let p = unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) };
            (!p.is_null()).then_some(p)
        };
        // SAFETY: the kernel exports these names with exactly these signatures.
        unsafe {
            Some(Host {
                device: std::mem::transmute::<*mut c_void, DeviceFn>(find(c"rjk_cuda_device")?),
                alloc: std::mem::transmute::<*mut c_void, AllocFn>(find(c"rjk_cuda_alloc")?),
                free: std::mem::transmute::<*mut c_void, FreeFn>(find(c"rjk_cuda_free")?),
                upload: std::mem::transmute::<*mut c_void, UploadFn>(find(c"rjk_cuda_upload")?),
                download: std::mem::transmute::<*mut c_void, DownloadFn>(find(c"rjk_cuda_download")?),
                launch: std::mem::transmute::<*mut c_void, LaunchFn>(find(c"rjk_cuda_launch")?),
                error: std::mem::transmute::<*mut c_void, ErrorFn>(find(c"rjk_cuda_error")?),
            })
        }
    });
    found.as_ref().ok_or_else(|| format!("CUDA is not available: this code is not running in rust-jit-kernel; {USE_CPU}"))
}

/// The kernel's message for the last failed call on this thread.
fn last_error(host: &Host) -> String {
    let mut buffer = vec![0u8; 4096];
    // SAFETY: the buffer is writable for its length.
    let len = unsafe { (host.error)(buffer.as_mut_ptr(), buffer.len()) }.min(buffer.len());
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}

fn fail(message: impl fmt::Display) -> ! {
    panic!("CudaError: {message}")
}

fn check(host: &Host, status: i32) {
    if status != 0 {
        fail(last_error(host));
    }
}

fn host_or_fail() -> &'static Host {
    host().unwrap_or_else(|message| fail(message))
}

/// The GPU cuda ufuncs run on (its name), or why they cannot run here (no driver, no GPU, no
/// NVRTC to compile for it): `match cuda::device() { ... }` lets a notebook say so instead of
/// failing.
pub fn device() -> Result<String, String> {
    let host = host()?;
    let mut name = vec![0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let len = unsafe { (host.device)(name.as_mut_ptr(), name.len()) };
    if len == 0 {
        return Err(last_error(host));
    }
    Ok(String::from_utf8_lossy(&name[..len.min(name.len())]).into_owned())
}

/// Whether cuda ufuncs can run here (see [`device`]).
pub fn is_available() -> bool {
    device().is_ok()
}

/// A scalar type that device arrays hold (the ones `#[vectorize]` takes).
pub trait Scalar: Copy + Send + Sync + 'static {
    const NAME: &'static str;
}

/// One allocation in the GPU's memory, freed on drop.
struct Buffer {
    ptr: u64,
}

impl Buffer {
    fn new(bytes: usize) -> Buffer {
        let host = host_or_fail();
        let mut ptr = 0u64;
        // SAFETY: `ptr` is writable.
        check(host, unsafe { (host.alloc)(bytes.max(1), &mut ptr) });
        Buffer { ptr }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Ok(host) = host() {
            // SAFETY: `ptr` came from `alloc` and is freed once.
            unsafe { (host.free)(self.ptr) };
        }
    }
}

/// An array in the GPU's memory (standard order), like Numba's device arrays: made by
/// [`to_device`] or returned by a cuda ufunc called on device arrays; `.to_host()` copies it
/// back.
pub struct DeviceArray<T: Scalar, D: Dimension> {
    buffer: Buffer,
    dim: D,
    _elem: PhantomData<T>,
}

/// Copies `array` to the GPU.
pub fn to_device<S: Data, D: Dimension>(array: &ArrayBase<S, D>) -> DeviceArray<S::Elem, D>
where
    S::Elem: Scalar,
{
    let contiguous = array.as_standard_layout();
    let buffer = upload(contiguous.as_slice().expect("standard layout"));
    DeviceArray { buffer, dim: array.raw_dim(), _elem: PhantomData }
}

impl<T: Scalar, D: Dimension> DeviceArray<T, D> {
    /// Copies the array back to the host.
    pub fn to_host(&self) -> Array<T, D> {
        let len = self.len();
        let mut data: Vec<T> = Vec::with_capacity(len);
        let host = host_or_fail();
        // SAFETY: `data` has room for `len` elements; the device buffer holds `len` of them.
        check(host, unsafe { (host.download)(data.as_mut_ptr() as *mut u8, self.buffer.ptr, len * std::mem::size_of::<T>()) });
        // SAFETY: the copy wrote all `len` elements (every bit pattern the kernel writes is a
        // valid value of T: bool kernels write 0 or 1).
        unsafe { data.set_len(len) };
        Array::from_shape_vec(self.dim.clone(), data).expect("the array's own shape")
    }

    /// The address of the array's memory on the GPU (Numba's `device_ctypes_pointer`), for
    /// code that launches kernels itself.
    pub fn device_ptr(&self) -> u64 {
        self.buffer.ptr
    }

    /// Numba's name for [`Self::to_host`].
    pub fn copy_to_host(&self) -> Array<T, D> {
        self.to_host()
    }

    pub fn shape(&self) -> &[usize] {
        self.dim.slice()
    }

    pub fn raw_dim(&self) -> D {
        self.dim.clone()
    }

    pub fn len(&self) -> usize {
        self.dim.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same array with a dimension type of `D2` (same shape).
    pub fn into_dimensionality<D2: Dimension>(self) -> DeviceArray<T, D2> {
        let dim = D2::from_dimension(&self.dim).unwrap_or_else(|| fail(format!("a device array of shape {:?} is not {}-dimensional", self.shape(), D2::NDIM.unwrap_or(0))));
        DeviceArray { buffer: self.buffer, dim, _elem: PhantomData }
    }
}

impl<T: Scalar, D: Dimension> fmt::Debug for DeviceArray<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceArray<{}> of shape {:?} on the GPU (.to_host() copies it back)", T::NAME, self.shape())
    }
}

/// An operand of a cuda ufunc, as its crate receives it (no generics across the boundary): a
/// host view, or a device array's memory. Made only by [`CudaArg::operand`].
pub struct Operand<'a, T>(Place_<'a, T>);

enum Place_<'a, T> {
    Host(ArrayViewD<'a, T>),
    Device { ptr: u64, shape: IxDyn, _array: PhantomData<&'a T> },
}

impl<T: Copy> Stage for Operand<'_, T> {
    fn operand_shape(&self) -> IxDyn {
        match &self.0 {
            Place_::Host(view) => view.raw_dim(),
            Place_::Device { shape, .. } => shape.clone(),
        }
    }

    fn stage_on_device(&self, shape: &IxDyn) -> Staged {
        match &self.0 {
            Place_::Device { ptr, shape: own, .. } => {
                if own.size() == 1 {
                    Staged { ptr: *ptr, step: 0, _owned: None }
                } else if own.size() == shape.size() && crate::par::broadcast_shape(own, shape).is_ok_and(|b| &b == shape) {
                    // The same elements in the same order (`[3]` as `[1, 3]`).
                    Staged { ptr: *ptr, step: 1, _owned: None }
                } else {
                    fail(format!(
                        "a device array of shape {:?} does not broadcast to {:?} on the GPU: device operands need the \
                         result's shape or a single element (broadcast on the host, then to_device)",
                        own.slice(),
                        shape.slice()
                    ))
                }
            }
            Place_::Host(view) => {
                if view.len() == 1 {
                    let one = view.iter().next().expect("one element");
                    let buffer = upload(std::slice::from_ref(one));
                    return Staged { ptr: buffer.ptr, step: 0, _owned: Some(buffer) };
                }
                // A copy only when the operand is broadcast or not in standard order.
                let full = view.broadcast(shape.clone()).expect("a shape from broadcast_shape");
                let contiguous = full.as_standard_layout();
                let buffer = upload(contiguous.as_slice().expect("standard layout"));
                Staged { ptr: buffer.ptr, step: 1, _owned: Some(buffer) }
            }
        }
    }
}

/// `data` copied to a new device buffer.
fn upload<T: Copy>(data: &[T]) -> Buffer {
    let bytes = std::mem::size_of_val(data);
    let buffer = Buffer::new(bytes);
    let host = host_or_fail();
    // SAFETY: `data` is readable for `bytes`; the buffer is that large.
    check(host, unsafe { (host.upload)(buffer.ptr, data.as_ptr() as *const u8, bytes) });
    buffer
}

/// The compiled kernel a cuda ufunc's crate carries: a CUBIN or PTX image (NUL-terminated),
/// or why there is none (NVRTC was not there when it was compiled).
pub enum Image {
    Ready(&'static [u8]),
    Unavailable(&'static str),
}

/// Operands of one call, of any element types.
pub trait Stage {
    fn operand_shape(&self) -> IxDyn;
    /// On the GPU, as the kernel reads it for an output of `shape`: a pointer and a step (1:
    /// one element per output element, in order; 0: one element for all).
    fn stage_on_device(&self, shape: &IxDyn) -> Staged;
}

/// An operand on the GPU for one launch (a copy of a host operand lives as long as this).
pub struct Staged {
    ptr: u64,
    step: u64,
    /// A copy of a host operand, freed after the launch.
    _owned: Option<Buffer>,
}

/// Runs `kernel` of `image` over the broadcast shape of `operands` and returns the result on
/// the GPU, after the kernel finished. The kernel's parameters are `n`, then a pointer and a
/// step per operand, then the output pointer (see `jit_codegen::cuda::translate`). Called by
/// the export shims `jit_codegen` writes.
///
/// # Safety
/// An `Image::Ready` is a NUL-terminated CUBIN or PTX image, alive for the process, that has a
/// kernel named `kernel` with exactly those parameters, for these element types.
#[doc(hidden)]
pub unsafe fn launch<O: Scalar>(image: &Image, kernel: &CStr, operands: &[&dyn Stage]) -> DeviceArray<O, IxDyn> {
    let image = match image {
        Image::Ready(bytes) => bytes,
        Image::Unavailable(why) => fail(format!("CUDA is not available: {why}; {USE_CPU}")),
    };
    let host = host_or_fail();
    let shapes: Vec<IxDyn> = operands.iter().map(|o| o.operand_shape()).collect();
    let shape = crate::ufunc::broadcast_shape(&shapes);
    let n = shape.size();
    let out = Buffer::new(n * std::mem::size_of::<O>());
    if n > 0 {
        let staged: Vec<Staged> = operands.iter().map(|o| o.stage_on_device(&shape)).collect();
        let mut params = vec![n as u64];
        for s in &staged {
            params.extend([s.ptr, s.step]);
        }
        params.push(out.ptr);
        // SAFETY: `image` is a NUL-terminated module image; the parameters match the kernel's
        // (all 64-bit); every pointer is a live device allocation of the right size.
        check(host, unsafe { (host.launch)(image.as_ptr(), image.len(), kernel.as_ptr(), n as u64, params.as_ptr(), params.len()) });
        drop(staged);
    }
    DeviceArray { buffer: out, dim: shape, _elem: PhantomData }
}

/// Where a call's result goes: to the host when every operand is on the host.
pub trait Place {
    type Array<O: Scalar, D: Dimension>;
    fn finish<O: Scalar, D: Dimension>(out: DeviceArray<O, IxDyn>) -> Self::Array<O, D>;
}

/// Every operand on the host: the result comes back as an ndarray `Array`.
pub struct OnHost;
/// An operand on the GPU: the result stays there, as a [`DeviceArray`].
pub struct OnDevice;

impl Place for OnHost {
    type Array<O: Scalar, D: Dimension> = Array<O, D>;
    fn finish<O: Scalar, D: Dimension>(out: DeviceArray<O, IxDyn>) -> Array<O, D> {
        crate::ufunc::into_dim(out.to_host())
    }
}

impl Place for OnDevice {
    type Array<O: Scalar, D: Dimension> = DeviceArray<O, D>;
    fn finish<O: Scalar, D: Dimension>(out: DeviceArray<O, IxDyn>) -> DeviceArray<O, D> {
        out.into_dimensionality()
    }
}

/// The place of a call with operands in places `Self` and `P`.
pub trait Join<P: Place>: Place {
    type Out: Place;
}
impl Join<OnHost> for OnHost {
    type Out = OnHost;
}
impl Join<OnDevice> for OnHost {
    type Out = OnDevice;
}
impl<P: Place> Join<P> for OnDevice {
    type Out = OnDevice;
}

/// The result type of a call whose operands are in place `P`.
pub type Output<P, O, D> = <P as Place>::Array<O, D>;

/// An argument of a cuda ufunc: what [`Arg`] takes (host arrays, scalars), or a device array.
pub trait CudaArg {
    type Elem: Scalar;
    type Dim: Dimension;
    type Place: Place;
    fn operand(&self) -> Operand<'_, Self::Elem>;
}

impl<S: Data, D: Dimension> CudaArg for ArrayBase<S, D>
where
    S::Elem: Scalar,
{
    type Elem = S::Elem;
    type Dim = D;
    type Place = OnHost;
    fn operand(&self) -> Operand<'_, S::Elem> {
        Operand(Place_::Host(Arg::view(self).into_dyn()))
    }
}

impl<T: Scalar, D: Dimension> CudaArg for DeviceArray<T, D> {
    type Elem = T;
    type Dim = D;
    type Place = OnDevice;
    fn operand(&self) -> Operand<'_, T> {
        Operand(Place_::Device { ptr: self.buffer.ptr, shape: self.dim.clone().into_dyn(), _array: PhantomData })
    }
}

impl<X: CudaArg> CudaArg for &X {
    type Elem = X::Elem;
    type Dim = X::Dim;
    type Place = X::Place;
    fn operand(&self) -> Operand<'_, X::Elem> {
        X::operand(self)
    }
}

/// The scalar types: device array elements, and arguments on the host like arrays of no axes.
macro_rules! scalars {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const NAME: &'static str = stringify!($t);
        }
        impl CudaArg for $t {
            type Elem = $t;
            type Dim = ndarray::Ix0;
            type Place = OnHost;
            fn operand(&self) -> Operand<'_, $t> {
                Operand(Place_::Host(Arg::view(self).into_dyn()))
            }
        }
    )*};
}
scalars!(i32, i64, u32, u64, f32, f64, bool);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn outside_the_kernel_cuda_is_not_available() {
        let why = device().unwrap_err();
        assert!(why.starts_with("CUDA is not available: this code is not running in rust-jit-kernel"), "{why}");
        assert!(!is_available());
        let a = array![1i64, 2, 3];
        let caught = std::panic::catch_unwind(|| to_device(&a)).unwrap_err();
        let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.starts_with("CudaError: CUDA is not available") && message.ends_with(USE_CPU), "{message}");
    }

    #[test]
    fn an_image_that_was_not_built_says_why() {
        let a = array![1i64, 2, 3];
        let operand = CudaArg::operand(&a);
        let caught = std::panic::catch_unwind(|| {
            // SAFETY: an unavailable image is never loaded.
            unsafe { launch::<i64>(&Image::Unavailable("libnvrtc was not found"), c"k", &[&operand]) };
        })
        .unwrap_err();
        let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(message, format!("CudaError: CUDA is not available: libnvrtc was not found; {USE_CPU}"));
    }
}
