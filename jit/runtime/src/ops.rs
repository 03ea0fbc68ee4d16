//! The operators `+ - * /` of `#[jit(parallel)]` functions.
//!
//! The kernel rewrites `l + r` in such a function into `::jit::__par_op!(__jit_add, l, r)`,
//! because it cannot know the operand types from the source. The types decide here, by
//! method resolution (autoref specialisation): when an operand is an ndarray array (by
//! reference or by value) and the other an array or a number of its element type, the
//! operation runs elementwise on the pool with NumPy broadcasting ([`crate::par`]); any other
//! operands use their own `+` as plain Rust would.
//!
//! How: `(&Bin::new(l, r)).__jit_add()` first looks for a method taking `&Bin` (the array
//! traits, implemented on `Bin<array, ...>`), then one taking `&&Bin` (the std traits,
//! implemented on `&Bin<L, R>` for every `L: Add<R>`).
//!
//! The array traits' methods carry `#[deprecated(note = "rjk:parallel-elementwise")]`: not to
//! deprecate anything, but so that rustc names, with a warning, each operator of the function
//! that resolved to them, with its place; the kernel reads those warnings after a compile for
//! `%jit_report` (what went parallel). Nothing else reads them.

use std::cell::Cell;
use std::ops::{Add, Div, Mul, Sub};

use ndarray::{Array, ArrayBase, Data, DimMax, Dimension};

use crate::par;

/// The two operands of one operator, taken once by whichever implementation applies.
pub struct Bin<L, R>(Cell<Option<(L, R)>>);

impl<L, R> Bin<L, R> {
    pub fn new(left: L, right: R) -> Self {
        Bin(Cell::new(Some((left, right))))
    }
    fn take(&self) -> (L, R) {
        self.0.take().expect("operands are used once")
    }
}

/// An array operand, by reference or by value.
pub trait Operand {
    type Elem;
    type Data: Data<Elem = Self::Elem>;
    type Dim: Dimension;
    fn array(&self) -> &ArrayBase<Self::Data, Self::Dim>;
}

impl<S: Data, D: Dimension> Operand for ArrayBase<S, D> {
    type Elem = S::Elem;
    type Data = S;
    type Dim = D;
    fn array(&self) -> &ArrayBase<S, D> {
        self
    }
}

impl<S: Data, D: Dimension> Operand for &ArrayBase<S, D> {
    type Elem = S::Elem;
    type Data = S;
    type Dim = D;
    fn array(&self) -> &ArrayBase<S, D> {
        self
    }
}

/// Runs one operator of a `#[jit(parallel)]` function (see the module docs).
#[doc(hidden)]
#[macro_export]
macro_rules! __par_op {
    ($method:ident, $left:expr, $right:expr) => {{
        #[allow(unused_imports)]
        use $crate::ops::{ArrayAdd as _, ArrayDiv as _, ArrayMul as _, ArraySub as _, StdAdd as _, StdDiv as _, StdMul as _, StdSub as _};
        (&$crate::ops::Bin::new($left, $right)).$method()
    }};
}

macro_rules! operator {
    ($Array:ident, $Std:ident, $Op:ident, $method:ident, $op:tt, [$($scalar:ty),*]) => {
        /// Arrays (with arrays or with numbers of their element type) on the pool.
        pub trait $Array {
            type Output;
            // Not deprecated: the kernel reads rustc's warning for each call that resolves
            // here, and so learns which operators of the function went parallel (see below).
            #[deprecated(note = "rjk:parallel-elementwise")]
            fn $method(&self) -> Self::Output;
        }

        /// Everything else: the operand types' own operator.
        pub trait $Std {
            type Output;
            fn $method(&self) -> Self::Output;
        }

        impl<L: $Op<R>, R> $Std for &Bin<L, R> {
            type Output = <L as $Op<R>>::Output;
            fn $method(&self) -> Self::Output {
                let (l, r) = self.take();
                l $op r
            }
        }

        impl<A, L, R> $Array for Bin<L, R>
        where
            A: Copy + Send + Sync + $Op<Output = A>,
            L: Operand<Elem = A>,
            R: Operand<Elem = A>,
            L::Dim: DimMax<R::Dim>,
        {
            type Output = Array<A, <L::Dim as DimMax<R::Dim>>::Output>;
            fn $method(&self) -> Self::Output {
                let (l, r) = self.take();
                par::zip_map(l.array(), r.array(), |&x, &y| x $op y)
            }
        }

        $(
            impl<L: Operand<Elem = $scalar>> $Array for Bin<L, $scalar> {
                type Output = Array<$scalar, L::Dim>;
                fn $method(&self) -> Self::Output {
                    let (l, r) = self.take();
                    par::map(l.array(), move |&x| x $op r)
                }
            }
            impl<R: Operand<Elem = $scalar>> $Array for Bin<$scalar, R> {
                type Output = Array<$scalar, R::Dim>;
                fn $method(&self) -> Self::Output {
                    let (l, r) = self.take();
                    par::map(r.array(), move |&y| l $op y)
                }
            }
        )*
    };
}

operator!(ArrayAdd, StdAdd, Add, __jit_add, +, [f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize]);
operator!(ArraySub, StdSub, Sub, __jit_sub, -, [f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize]);
operator!(ArrayMul, StdMul, Mul, __jit_mul, *, [f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize]);
operator!(ArrayDiv, StdDiv, Div, __jit_div, /, [f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize]);

#[cfg(test)]
#[allow(deprecated)]
mod tests {

    use ndarray::{array, Array1, Array2};

    #[test]
    fn arrays_and_numbers_of_their_element_type_run_elementwise() {
        let a = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f64);
        let trace = 0.5;
        let parallel: Array2<f64> = __par_op!(__jit_add, &a, trace);
        assert_eq!(parallel, &a + trace);
        let left: Array2<f64> = __par_op!(__jit_mul, 2.0, &a);
        assert_eq!(left, 2.0 * &a);
        let owned: Array2<f64> = __par_op!(__jit_sub, a.clone(), 1.0);
        assert_eq!(owned, &a - 1.0);
        let v: Array1<i64> = array![1, 2, 3];
        let divided: Array1<i64> = __par_op!(__jit_div, &v, 2);
        assert_eq!(divided, array![0, 1, 1]);
    }

    #[test]
    fn arrays_broadcast_together() {
        let column = array![[1.0], [2.0]];
        let row = array![10.0, 20.0, 30.0];
        let sum = __par_op!(__jit_add, &column, &row);
        assert_eq!(sum, &column + &row);
        let owned_both = __par_op!(__jit_sub, column.clone(), row.clone());
        assert_eq!(owned_both, &column - &row);
    }

    #[test]
    fn everything_else_is_plain_rust() {
        let x: f64 = __par_op!(__jit_add, 1.5, 2.0);
        assert_eq!(x, 3.5);
        let n = 7usize;
        let m = __par_op!(__jit_mul, n, 3);
        assert_eq!(m, 21usize);
        let s = __par_op!(__jit_add, String::from("a"), "b");
        assert_eq!(s, "ab");
        let d = __par_op!(__jit_sub, std::time::Duration::from_secs(3), std::time::Duration::from_secs(1));
        assert_eq!(d.as_secs(), 2);
        // Nested, as the rewrite produces for `a * 2.0 + b`.
        let a = array![1.0, 2.0];
        let b = array![0.5, 0.5];
        let nested = __par_op!(__jit_add, __par_op!(__jit_mul, &a, 2.0), &b);
        assert_eq!(nested, &a * 2.0 + &b);
    }

    #[test]
    fn scalar_literals_infer_from_the_other_operand() {
        let a = array![1.0f32, 2.0];
        let r = __par_op!(__jit_div, &a, 2.0);
        assert_eq!(r, array![0.5f32, 1.0]);
        let i = 3i32;
        let k = __par_op!(__jit_sub, i, 1);
        assert_eq!(k, 2i32);
    }
}
