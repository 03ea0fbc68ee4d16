//! `#[vectorize]`: a scalar function applied elementwise to arrays, with NumPy broadcasting.
//!
//! A cell calls the vectorized function through a generic wrapper (see `jit-codegen`): each
//! argument is an [`Arg`] (an array by reference or by value, of any dimension, or a scalar);
//! the wrapper broadcasts the arguments to one shape ([`broadcast_shape`], [`broadcast`]:
//! views, no copies) and hands the views to the compiled code, which runs `apply1`..`apply5`
//! (serially, or on the session's pool for `target = "parallel"`). The result has the
//! broadcast dimension type ([`into_dim`]).

use std::mem::MaybeUninit;

use ndarray::{aview0, Array, ArrayBase, ArrayD, ArrayView, ArrayViewD, ArrayViewMut, Data, Dimension, Ix0, IxDyn, Zip};

use crate::par;

/// An argument of a vectorized function: an array (by reference or by value) or a scalar.
pub trait Arg {
    type Elem: Copy;
    type Dim: Dimension;
    fn view(&self) -> ArrayView<'_, Self::Elem, Self::Dim>;
}

impl<S: Data, D: Dimension> Arg for ArrayBase<S, D>
where
    S::Elem: Copy,
{
    type Elem = S::Elem;
    type Dim = D;
    fn view(&self) -> ArrayView<'_, S::Elem, D> {
        ndarray::ArrayRef::view(self)
    }
}

/// By reference too.
impl<T: Arg> Arg for &T {
    type Elem = T::Elem;
    type Dim = T::Dim;
    fn view(&self) -> ArrayView<'_, T::Elem, T::Dim> {
        T::view(self)
    }
}

macro_rules! scalar_args {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            type Elem = $t;
            type Dim = Ix0;
            fn view(&self) -> ArrayView<'_, $t, Ix0> {
                aview0(self)
            }
        }
    )*};
}
scalar_args!(i32, i64, u32, u64, f32, f64, bool);

/// The shape arguments of these shapes broadcast to (NumPy's rules); panics like ndarray when
/// they do not broadcast.
pub fn broadcast_shape(shapes: &[IxDyn]) -> IxDyn {
    shapes.iter().fold(IxDyn(&[]), |acc, s| par::broadcast_shape(&acc, s).unwrap_or_else(|message| panic!("{message}")))
}

/// `view` broadcast to `shape` (a shape from [`broadcast_shape`]).
pub fn broadcast<'a, A>(view: &'a ArrayViewD<'_, A>, shape: &IxDyn) -> ArrayViewD<'a, A> {
    view.broadcast(shape.clone()).expect("a shape from broadcast_shape")
}

/// The result as the dimension type the wrapper promised (the broadcast one).
pub fn into_dim<O, D: Dimension>(out: ArrayD<O>) -> Array<O, D> {
    out.into_dimensionality::<D>().expect("the broadcast dimension")
}

/// An array of `shape` written by `fill(block, rows)` (see `par::build`), serially or on the pool.
fn fill_array<O: Send>(
    shape: IxDyn,
    parallel: bool,
    fill: impl Fn(ArrayViewMut<'_, MaybeUninit<O>, IxDyn>, Option<std::ops::Range<usize>>) + Sync,
) -> ArrayD<O> {
    if parallel {
        par::build(shape, fill)
    } else {
        let mut out = Array::<O, IxDyn>::uninit(shape);
        fill(out.view_mut(), None);
        // SAFETY: `fill` wrote every element.
        unsafe { out.assume_init() }
    }
}

macro_rules! apply {
    ($name:ident, $($arg:ident: $ty:ident),+) => {
        /// `f` applied elementwise to same-shape views (one element of each per call), serially
        /// or on the session's pool.
        #[allow(clippy::too_many_arguments)]
        pub fn $name<$($ty: Copy + Sync,)+ O: Send>($($arg: ArrayViewD<'_, $ty>,)+ f: impl Fn($($ty),+) -> O + Sync, parallel: bool) -> ArrayD<O> {
            let shape = apply!(@first $($arg),+).raw_dim();
            fill_array(shape, parallel, |mut block, rows| {
                Zip::from(&mut block)$(.and(par::rows_of(&$arg, &rows)))+.for_each(|o, $(&$arg),+| {
                    o.write(f($($arg),+));
                })
            })
        }
    };
    (@first $first:ident $(, $rest:ident)*) => { $first };
}
apply!(apply1, a: A);
apply!(apply2, a: A, b: B);
apply!(apply3, a: A, b: B, c: C);
apply!(apply4, a: A, b: B, c: C, d: D);
apply!(apply5, a: A, b: B, c: C, d: D, e: E);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array0, Array1, Array2};

    #[test]
    fn broadcasts_like_numpy_serially_and_in_parallel() {
        let column: Array2<i64> = array![[1], [2], [3]];
        let row: Array1<i64> = array![10, 20];
        let row_ref = &row;
        let (c, r) = (Arg::view(&column).into_dyn(), Arg::view(&row_ref).into_dyn());
        let shape = broadcast_shape(&[c.raw_dim(), r.raw_dim()]);
        assert_eq!(shape.slice(), &[3, 2]);
        for parallel in [false, true] {
            let out: Array2<i64> = into_dim(apply2(broadcast(&c, &shape), broadcast(&r, &shape), |x, y| x + y, parallel));
            assert_eq!(out, &column + &row);
        }
    }

    #[test]
    fn mixed_types_scalars_and_zero_dimensions() {
        let a = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32);
        let n = 2i32;
        let (va, vn) = (Arg::view(&a).into_dyn(), Arg::view(&n).into_dyn());
        let shape = broadcast_shape(&[va.raw_dim(), vn.raw_dim()]);
        let out: Array2<f32> = into_dim(apply2(broadcast(&va, &shape), broadcast(&vn, &shape), |x: f32, k: i32| x.powi(k), true));
        assert_eq!(out, a.mapv(|x| x * x));
        let one = 1.5f64;
        let v = Arg::view(&one).into_dyn();
        let zero: Array0<bool> = into_dim(apply1(v, |x: f64| x > 1.0, false));
        assert!(zero.into_scalar());
        let five: Array2<f32> = into_dim(apply5(va.clone(), va.clone(), va.clone(), va.clone(), va.clone(), |a, b, c, d, e| a + b + c + d + e, true));
        assert_eq!(five, &a * 5.0);
    }

    #[test]
    #[should_panic(expected = "could not broadcast")]
    fn shapes_that_do_not_broadcast() {
        broadcast_shape(&[IxDyn(&[3]), IxDyn(&[4])]);
    }
}
