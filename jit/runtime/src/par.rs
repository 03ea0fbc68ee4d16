//! Parallel building blocks on the session's pool: elementwise maps with NumPy broadcasting,
//! and `prange` loops (plain and reducing). `#[jit(parallel)]` rewrites a function's array
//! operators and `prange` loops into calls of these; they can also be called directly.

use std::mem::MaybeUninit;
use std::ops::{Range, RangeInclusive};
use std::sync::Mutex;

use ndarray::{Array, ArrayBase, ArrayView, ArrayViewMut, Axis, Data, DimMax, Dimension, Zip};

use crate::pool;

/// How many parts `len` units of work are cut into: one per thread (a region is split once;
/// the calling thread does a part, and takes back a part no other thread has started).
fn tasks_for(len: usize) -> usize {
    len.min(pool::threads()).max(1)
}

/// An array of shape `dim` whose elements `fill` writes, part by part in parallel: the
/// outermost axis is cut into row blocks; `fill(block, rows)` must write every element of
/// `block`, which holds rows `rows` of the result (`None`: the whole, 0-dimensional, array).
pub(crate) fn build<C: Send, D: Dimension>(
    dim: D,
    fill: impl Fn(ArrayViewMut<'_, MaybeUninit<C>, D>, Option<Range<usize>>) + Sync,
) -> Array<C, D> {
    let mut out = Array::<C, D>::uninit(dim);
    if out.ndim() == 0 {
        fill(out.view_mut(), None);
    } else if !out.is_empty() {
        let rows = out.len_of(Axis(0));
        let stream = out.len() * std::mem::size_of::<C>() >= stream_bytes();
        let per = rows.div_ceil(tasks_for(rows));
        let blocks: Vec<Mutex<ArrayViewMut<'_, MaybeUninit<C>, D>>> =
            out.axis_chunks_iter_mut(Axis(0), per).map(Mutex::new).collect();
        pool::run_tasks(blocks.len(), |k| {
            let mut block = blocks[k].lock().unwrap_or_else(|e| e.into_inner());
            let start = k * per;
            let end = start + block.len_of(Axis(0));
            if stream && block.is_standard_layout() {
                fill_streaming(block.view_mut(), start..end, &fill);
            } else {
                fill(block.view_mut(), Some(start..end));
            }
        });
    }
    // SAFETY: every block was written completely by `fill` (a panic in it unwinds past this).
    unsafe { out.assume_init() }
}

/// Results of at least half the last-level cache are written with streaming stores (past the
/// caches): with an operand as large, such a result cannot stay in the cache, and writing it
/// without first reading each line (as ordinary stores do) moves a third less memory. Smaller ones
/// stay in the cache between calls, which is faster than any store to memory (measured on a
/// 32 MiB L3: 8 MB results 2.2x slower streamed, 18 MB ones the same, 32 MB ones 11% faster).
fn stream_bytes() -> usize {
    if cfg!(test) {
        // The tests' arrays take the streaming path.
        return 1 << 20;
    }
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| (last_level_cache().unwrap_or(32 << 20) / 2).max(1 << 20))
}

/// The size of CPU 0's last-level cache, from Linux's sysfs.
fn last_level_cache() -> Option<usize> {
    let caches = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    let mut best: Option<(u32, usize)> = None;
    for cache in caches.flatten() {
        let read = |name: &str| std::fs::read_to_string(cache.path().join(name)).ok().map(|s| s.trim().to_string());
        let (Some(level), Some(size)) = (read("level").and_then(|l| l.parse::<u32>().ok()), read("size")) else { continue };
        let bytes = match size.strip_suffix('K') {
            Some(k) => k.parse::<usize>().ok()? << 10,
            None => match size.strip_suffix('M') {
                Some(m) => m.parse::<usize>().ok()? << 20,
                None => size.parse().ok()?,
            },
        };
        if best.is_none_or(|(l, _)| level > l) {
            best = Some((level, bytes));
        }
    }
    best.map(|(_, bytes)| bytes)
}
/// How much of a result `fill_streaming` computes at a time (in the L1/L2 caches).
const STREAM_CHUNK_BYTES: usize = 16 << 10;

/// `fill` for the contiguous `block` (rows `rows` of the result), a few rows at a time into a
/// small buffer, each part then copied to `block` with streaming stores.
fn fill_streaming<C, D: Dimension>(
    mut block: ArrayViewMut<'_, MaybeUninit<C>, D>,
    rows: Range<usize>,
    fill: &impl Fn(ArrayViewMut<'_, MaybeUninit<C>, D>, Option<Range<usize>>),
) {
    let row_len = block.len() / rows.len();
    let per = (STREAM_CHUNK_BYTES / std::mem::size_of::<C>().max(1) / row_len.max(1)).max(1);
    // Never given a length: what `fill` writes in it is moved out by the copy, not dropped here.
    let mut buffer: Vec<C> = Vec::with_capacity(per * row_len);
    let dst = block.as_mut_ptr();
    let mut start = rows.start;
    while start < rows.end {
        let end = (start + per).min(rows.end);
        let n = (end - start) * row_len;
        let mut shape = block.raw_dim();
        shape[0] = end - start;
        let part = ArrayViewMut::from_shape(shape, &mut buffer.spare_capacity_mut()[..n]).expect("a buffer of the part's size");
        fill(part, Some(start..end));
        // SAFETY: `fill` wrote the part's `n` elements into the buffer; `dst` is the block's
        // contiguous memory, of which these are elements `(start - rows.start) * row_len..`.
        unsafe {
            stream_copy(buffer.as_ptr().cast::<u8>(), dst.add((start - rows.start) * row_len).cast::<u8>(), n * std::mem::size_of::<C>());
        }
        start = end;
    }
    store_fence();
}

/// Copies `bytes` bytes from `src` to `dst` with streaming stores where the CPU has them.
///
/// # Safety
/// As `ptr::copy_nonoverlapping(src, dst, bytes)`.
unsafe fn stream_copy(src: *const u8, dst: *mut u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        // SSE2, which every x86-64 CPU has: 16 bytes at a time to 16-byte-aligned addresses.
        let head = dst.align_offset(16).min(bytes);
        std::ptr::copy_nonoverlapping(src, dst, head);
        let mut i = head;
        while i + 64 <= bytes {
            for k in (0..64).step_by(16) {
                _mm_stream_si128(dst.add(i + k).cast::<__m128i>(), _mm_loadu_si128(src.add(i + k).cast::<__m128i>()));
            }
            i += 64;
        }
        while i + 16 <= bytes {
            _mm_stream_si128(dst.add(i).cast::<__m128i>(), _mm_loadu_si128(src.add(i).cast::<__m128i>()));
            i += 16;
        }
        std::ptr::copy_nonoverlapping(src.add(i), dst.add(i), bytes - i);
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::ptr::copy_nonoverlapping(src, dst, bytes);
}

/// Orders this thread's streaming stores before what it does next (the end of its task).
fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE, which every x86-64 CPU has.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// The rows `rows` of `view` (all of it for `None`).
pub(crate) fn rows_of<'a, A, D: Dimension>(view: &ArrayView<'a, A, D>, rows: &Option<Range<usize>>) -> ArrayView<'a, A, D> {
    match rows {
        Some(rows) => view.clone().slice_axis_move(Axis(0), rows.clone().into()),
        None => view.clone(),
    }
}

/// `f` applied to every element of `a`, in parallel.
pub fn map<A, B, S, D, F>(a: &ArrayBase<S, D>, f: F) -> Array<B, D>
where
    A: Sync,
    B: Send,
    S: Data<Elem = A>,
    D: Dimension,
    F: Fn(&A) -> B + Sync,
{
    let a = a.view();
    build(a.raw_dim(), |block, rows| {
        Zip::from(block).and(rows_of(&a, &rows)).for_each(|o, x| {
            o.write(f(x));
        })
    })
}

/// The shape two arrays broadcast to under NumPy's rules, or a message like ndarray's.
pub fn broadcast_shape<D1, D2>(a: &D1, b: &D2) -> Result<<D1 as DimMax<D2>>::Output, String>
where
    D1: Dimension + DimMax<D2>,
    D2: Dimension,
{
    let (sa, sb) = (a.slice(), b.slice());
    let n = sa.len().max(sb.len());
    let mut out = <D1 as DimMax<D2>>::Output::zeros(n);
    for (i, o) in out.slice_mut().iter_mut().enumerate() {
        // Align from the right; a missing axis counts as 1.
        let x = if i + sa.len() >= n { sa[i + sa.len() - n] } else { 1 };
        let y = if i + sb.len() >= n { sb[i + sb.len() - n] } else { 1 };
        *o = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("ndarray: could not broadcast array from shape: {sa:?} to: {sb:?}")),
        };
    }
    Ok(out)
}

/// `f(x, y)` for the elements of `a` and `b` broadcast together, in parallel.
pub fn zip_map<A, B, C, S1, S2, D1, D2, F>(a: &ArrayBase<S1, D1>, b: &ArrayBase<S2, D2>, f: F) -> Array<C, <D1 as DimMax<D2>>::Output>
where
    A: Sync,
    B: Sync,
    C: Send,
    S1: Data<Elem = A>,
    S2: Data<Elem = B>,
    D1: Dimension + DimMax<D2>,
    D2: Dimension,
    F: Fn(&A, &B) -> C + Sync,
{
    let shape = broadcast_shape(&a.raw_dim(), &b.raw_dim()).unwrap_or_else(|message| panic!("{message}"));
    let a = a.broadcast(shape.clone()).expect("broadcast shape");
    let b = b.broadcast(shape.clone()).expect("broadcast shape");
    build(shape, |block, rows| {
        Zip::from(block).and(rows_of(&a, &rows)).and(rows_of(&b, &rows)).for_each(|o, x, y| {
            o.write(f(x, y));
        })
    })
}

/// What `prange` takes: a range, or a count `n` (Numba's `prange(n)`, the range `0..n`).
pub trait PrangeArg {
    type Range;
    fn into_range(self) -> Self::Range;
}

impl<T> PrangeArg for Range<T> {
    type Range = Range<T>;
    fn into_range(self) -> Range<T> {
        self
    }
}

impl<T> PrangeArg for RangeInclusive<T> {
    type Range = RangeInclusive<T>;
    fn into_range(self) -> RangeInclusive<T> {
        self
    }
}

/// A count (`usize`, so a literal `prange(10)` needs no suffix; `prange(0..n)` for other types).
impl PrangeArg for usize {
    type Range = Range<usize>;
    fn into_range(self) -> Range<usize> {
        0..self
    }
}

/// Integer ranges `prange` can cut into parts (and a count, `0..n`).
pub trait PRange {
    type Index: Copy + Send + Sync;
    /// At most `parts` non-empty, consecutive inclusive ranges covering the range, in order.
    fn parts(&self, parts: usize) -> Vec<RangeInclusive<Self::Index>>;
    fn len_hint(&self) -> usize;
}

macro_rules! prange_index {
    ($($t:ty),*) => {$(
        impl PRange for Range<$t> {
            type Index = $t;
            fn parts(&self, parts: usize) -> Vec<RangeInclusive<$t>> {
                if self.start >= self.end {
                    return Vec::new();
                }
                split_inclusive(self.start as i128, self.end as i128 - 1, parts).into_iter().map(|(a, b)| a as $t..=b as $t).collect()
            }
            fn len_hint(&self) -> usize {
                (self.end as i128 - self.start as i128).clamp(0, usize::MAX as i128) as usize
            }
        }
        impl PRange for RangeInclusive<$t> {
            type Index = $t;
            fn parts(&self, parts: usize) -> Vec<RangeInclusive<$t>> {
                if self.is_empty() {
                    return Vec::new();
                }
                split_inclusive(*self.start() as i128, *self.end() as i128, parts).into_iter().map(|(a, b)| a as $t..=b as $t).collect()
            }
            fn len_hint(&self) -> usize {
                (*self.end() as i128 - *self.start() as i128 + 1).clamp(0, usize::MAX as i128) as usize
            }
        }
    )*};
}
prange_index!(usize, isize, u8, u16, u32, u64, i8, i16, i32, i64);

impl PRange for usize {
    type Index = usize;
    fn parts(&self, parts: usize) -> Vec<RangeInclusive<usize>> {
        (0..*self).parts(parts)
    }
    fn len_hint(&self) -> usize {
        *self
    }
}

fn split_inclusive(first: i128, last: i128, parts: usize) -> Vec<(i128, i128)> {
    let len = last - first + 1;
    let parts = (parts as i128).clamp(1, len);
    let (per, extra) = (len / parts, len % parts);
    let mut out = Vec::with_capacity(parts as usize);
    let mut start = first;
    for k in 0..parts {
        let size = per + i128::from(k < extra);
        out.push((start, start + size - 1));
        start += size;
    }
    out
}

/// Runs `body` on parts of `range` in parallel (a `prange` loop without reductions).
pub fn prange_for<R, F>(range: R, body: F)
where
    R: PRange,
    F: Fn(RangeInclusive<R::Index>) + Sync,
{
    let parts = range.parts(tasks_for(range.len_hint()));
    pool::run_tasks(parts.len(), |k| body(parts[k].clone()));
}

/// Runs `body` on parts of `range` in parallel and folds what each part returned into
/// `identity` with `combine`, in range order (a `prange` loop with reductions).
pub fn prange_reduce<R, T, F, C>(range: R, identity: T, body: F, combine: C) -> T
where
    R: PRange,
    T: Send,
    F: Fn(RangeInclusive<R::Index>) -> T + Sync,
    C: Fn(T, T) -> T,
{
    let parts = range.parts(tasks_for(range.len_hint()));
    let results: Vec<Mutex<Option<T>>> = parts.iter().map(|_| Mutex::new(None)).collect();
    pool::run_tasks(parts.len(), |k| {
        let value = body(parts[k].clone());
        *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    });
    results
        .into_iter()
        .filter_map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()))
        .fold(identity, combine)
}

/// The start values of a reduction variable: what each part of a `prange` loop begins with.
pub trait Reduce: Sized {
    /// The identity of `+`, shaped like `self`.
    fn zero_like(&self) -> Self;
    /// The identity of `*`, shaped like `self`.
    fn one_like(&self) -> Self;
}

macro_rules! reduce_scalar {
    ($zero:literal, $one:literal: $($t:ty),*) => {$(
        impl Reduce for $t {
            fn zero_like(&self) -> Self { $zero }
            fn one_like(&self) -> Self { $one }
        }
    )*};
}
reduce_scalar!(0, 1: usize, isize, u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);
reduce_scalar!(0.0, 1.0: f32, f64);

impl<A, D> Reduce for Array<A, D>
where
    A: Clone + num_identities::Zero + num_identities::One,
    D: Dimension,
{
    fn zero_like(&self) -> Self {
        Array::from_elem(self.raw_dim(), A::zero())
    }
    fn one_like(&self) -> Self {
        Array::from_elem(self.raw_dim(), A::one())
    }
}

/// `0` and `1` of array elements (ndarray's `num_traits` bounds, without naming the crate).
mod num_identities {
    pub trait Zero {
        fn zero() -> Self;
    }
    pub trait One {
        fn one() -> Self;
    }
    macro_rules! identities {
        ($zero:literal, $one:literal: $($t:ty),*) => {$(
            impl Zero for $t { fn zero() -> Self { $zero } }
            impl One for $t { fn one() -> Self { $one } }
        )*};
    }
    identities!(0, 1: usize, isize, u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);
    identities!(0.0, 1.0: f32, f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn map_matches_a_serial_map_in_every_dimension() {
        let a = Array::from_shape_fn((37, 5, 3), |(i, j, k)| (i * 100 + j * 10 + k) as f64);
        assert_eq!(map(&a, |x| x * 2.0 + 1.0), a.mapv(|x| x * 2.0 + 1.0));
        let b = array![1, 2, 3];
        assert_eq!(map(&b, |x| x - 1), array![0, 1, 2]);
        let scalar = ndarray::arr0(4.0);
        assert_eq!(map(&scalar, |x| x * x), ndarray::arr0(16.0));
        let empty = Array2::<f64>::zeros((0, 3));
        assert_eq!(map(&empty, |x| *x).shape(), &[0, 3]);
    }

    #[test]
    fn large_results_written_with_streaming_stores_are_the_same() {
        // Over the streaming size (1 MiB in tests): 1-, 2- and 3-dimensional, odd sizes,
        // broadcasting, a type with drop.
        let a = Array::from_shape_fn((1001, 613), |(i, j)| (i * 613 + j) as f64);
        assert_eq!(map(&a, |x| x * 2.0 + 1.0), a.mapv(|x| x * 2.0 + 1.0));
        let row = Array::from_shape_fn(613, |j| j as f64);
        assert_eq!(zip_map(&a, &row, |x, y| x - y), &a - &row);
        let long = Array::from_shape_fn(700_001, |i| i as u64);
        assert_eq!(map(&long, |x| x + 3), long.mapv(|x| x + 3));
        let cube = Array::from_shape_fn((3, 400, 501), |(i, j, k)| (i + j * k) as f32);
        assert_eq!(map(&cube, |x| x / 2.0), cube.mapv(|x| x / 2.0));
        let words = map(&Array::from_shape_fn(180_000, |i| i), |i| i.to_string());
        assert_eq!((words.len(), words[179_999].as_str()), (180_000, "179999"));
        let wide = Array::from_shape_fn((1, 600_000), |(_, j)| j as f64);
        assert_eq!(map(&wide, |x| -x), wide.mapv(|x| -x));
    }

    #[test]
    fn the_last_level_cache_is_found() {
        if std::path::Path::new("/sys/devices/system/cpu/cpu0/cache/index0").exists() {
            assert!(last_level_cache().is_some_and(|bytes| bytes >= 32 << 10));
        }
    }

    #[test]
    fn map_of_a_transposed_view_keeps_its_logical_order() {
        let a = Array::from_shape_fn((6, 4), |(i, j)| (i * 4 + j) as i64);
        let t = a.t();
        assert_eq!(map(&t, |x| *x), t.to_owned());
    }

    #[test]
    fn zip_map_broadcasts_like_ndarray() {
        let column = Array::from_shape_fn((3, 1), |(i, _)| i as f64);
        let row = Array::from_shape_fn((1, 4), |(_, j)| 10.0 * j as f64);
        assert_eq!(zip_map(&column, &row, |x, y| x + y), &column + &row);
        let matrix = Array::from_shape_fn((5, 4), |(i, j)| (i * j) as f64);
        let vector = array![1.0, 2.0, 3.0, 4.0];
        assert_eq!(zip_map(&matrix, &vector, |x, y| x * y), &matrix * &vector);
        assert_eq!(zip_map(&vector, &matrix, |x, y| x - y), &vector - &matrix);
    }

    #[test]
    fn zip_map_refuses_shapes_that_do_not_broadcast() {
        let a = Array2::<f64>::zeros((3, 4));
        let b = Array2::<f64>::zeros((2, 4));
        let caught = std::panic::catch_unwind(|| zip_map(&a, &b, |x, y| x + y)).unwrap_err();
        let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("could not broadcast"), "{message}");
    }

    #[test]
    fn ranges_split_into_ordered_covering_parts() {
        assert_eq!((0..10usize).parts(3), vec![0..=3, 4..=6, 7..=9]);
        assert_eq!((0..=9i32).parts(20).len(), 10);
        assert_eq!((5..5u64).parts(4), Vec::<RangeInclusive<u64>>::new());
        assert_eq!((-3..3i64).parts(2), vec![-3..=-1, 0..=2]);
        assert_eq!((250u8..=255).parts(2), vec![250..=252, 253..=255]);
    }

    #[test]
    fn prange_reduce_sums_like_a_serial_loop() {
        let total = prange_reduce(0..100_000u64, 0u64, |part| part.sum::<u64>(), |a, b| a + b);
        assert_eq!(total, (0..100_000u64).sum::<u64>());
        let product = prange_reduce(1..=10i64, 1i64, |part| part.product::<i64>(), |a, b| a * b);
        assert_eq!(product, 3_628_800);
        let none = prange_reduce(0..0usize, 7usize, |part| part.count(), |a, b| a + b);
        assert_eq!(none, 7);
        // Numba's `prange(n)`.
        assert_eq!(prange_reduce(10usize, 0usize, |part| part.sum::<usize>(), |a, b| a + b), 45);
        assert_eq!((0..10).collect::<Vec<_>>(), crate::prange(10).collect::<Vec<_>>());
        let mut seen = 0;
        for i in crate::prange(4) {
            seen += i;
        }
        assert_eq!(seen, 6);
        assert_eq!(crate::prange(2..=4u8), 2..=4);
    }

    #[test]
    fn prange_for_visits_every_index_once() {
        let seen: Vec<std::sync::atomic::AtomicUsize> = (0..1000).map(|_| Default::default()).collect();
        prange_for(0..1000usize, |part| {
            for i in part {
                seen[i].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        assert!(seen.iter().all(|s| s.load(std::sync::atomic::Ordering::SeqCst) == 1));
    }

    #[test]
    fn reduction_identities() {
        assert_eq!(3.5f64.zero_like(), 0.0);
        assert_eq!(7i32.one_like(), 1);
        let acc = Array2::<f64>::ones((2, 3));
        assert_eq!(acc.zero_like(), Array2::<f64>::zeros((2, 3)));
    }
}
