//! `#[vectorize]`: a scalar function made elementwise over arrays (NumPy's ufuncs).
//!
//! The function itself is compiled as written, in its crate; what differs from `#[jit]` is
//! the boundary: the crate exports a function over same-shape dynamic-dimension views that
//! runs `jit::ufunc::applyN` (serially for `target = "cpu"`, on the session's pool for
//! `"parallel"`), and the cell's wrapper is generic over its arguments (arrays of any
//! dimension, by reference or by value, or scalars), broadcasts them (views, no copies) and
//! returns an array of the broadcast dimension. `target = "cuda"` translates the body to CUDA C
//! ([`crate::cuda`]).

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;

use crate::cuda::{CudaSource, DeviceImage};
use crate::error::{unsupported, Unsupported};
use crate::scalar::{scalar_signature, Scalar};

/// Where a vectorized function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Cpu,
    Parallel,
    Cuda,
}

const OPTIONS_HELP: &str = "`#[vectorize]` accepts `target = \"cpu\"` (the default), `\"parallel\"` or `\"cuda\"`";

/// The options inside `#[vectorize(...)]`.
pub(crate) fn parse_options(stream: TokenStream) -> Result<Target, (Span, String)> {
    let trees: Vec<TokenTree> = stream.into_iter().collect();
    let mut target = Target::Cpu;
    for option in trees.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ',')) {
        match option {
            [] => {}
            [TokenTree::Ident(name), TokenTree::Punct(eq), TokenTree::Literal(value)] if name == "target" && eq.as_char() == '=' => {
                target = match value.to_string().as_str() {
                    "\"cpu\"" => Target::Cpu,
                    "\"parallel\"" => Target::Parallel,
                    "\"cuda\"" => Target::Cuda,
                    other => return Err((value.span(), format!("unknown target {other}: {OPTIONS_HELP}"))),
                };
            }
            [first, ..] => return Err((first.span(), format!("unknown #[vectorize] option: {OPTIONS_HELP}"))),
        }
    }
    Ok(target)
}

/// The most arguments a vectorized function takes (`jit::ufunc::apply5`).
pub const MAX_ARGS: usize = 5;

/// What makes a function a ufunc: its target and its scalar types.
#[derive(Debug, Clone, PartialEq)]
pub struct Ufunc {
    pub target: Target,
    pub params: Vec<Scalar>,
    pub output: Scalar,
    /// `target = "cuda"`: the body in CUDA C.
    pub cuda: Option<CudaSource>,
}

impl Ufunc {
    /// `line` is the cell line of the function's first line.
    pub(crate) fn new(item: &syn::ItemFn, target: Target, line: usize) -> Result<Ufunc, Unsupported> {
        let (params, output) = scalar_signature(item)?;
        if params.is_empty() || params.len() > MAX_ARGS {
            return Err(Unsupported {
                span: item.sig.inputs.span(),
                message: format!("a #[vectorize] function takes 1 to {MAX_ARGS} arguments"),
            });
        }
        if !item.sig.generics.params.is_empty() {
            return Err(unsupported(&item.sig.generics, "a generic parameter"));
        }
        // Translated now, so that an unsupported body is an error before anything compiles.
        let cuda = if target == Target::Cuda { Some(crate::cuda::translate(item, line)?) } else { None };
        Ok(Ufunc { target, params: params.into_iter().map(|(_, s)| s).collect(), output, cuda })
    }

    fn view_params(&self) -> Vec<String> {
        self.params.iter().enumerate().map(|(i, p)| format!("__jit_{i}: ::jit::ndarray::ArrayViewD<'a, {}>", p.rust())).collect()
    }

    fn view_result(&self) -> String {
        format!("::jit::ndarray::ArrayD<{}>", self.output.rust())
    }

    fn operand_params(&self) -> Vec<String> {
        self.params.iter().enumerate().map(|(i, p)| format!("__jit_{i}: ::jit::cuda::Operand<'a, {}>", p.rust())).collect()
    }

    fn device_result(&self) -> String {
        format!("::jit::cuda::DeviceArray<{}, ::jit::ndarray::IxDyn>", self.output.rust())
    }

    /// The crate's export: the function over same-shape views, or for `cuda` over operands on
    /// the host or the GPU, launching the compiled kernel `device_image` (embedded in the crate).
    pub(crate) fn export_shim(&self, name: &str, symbol: &str, device_image: Option<&DeviceImage>) -> String {
        let args: Vec<String> = (0..self.params.len()).map(|i| format!("__jit_{i}")).collect();
        if let Some(cuda) = &self.cuda {
            let image = match device_image {
                Some(DeviceImage::Ready(path)) => format!("::jit::cuda::Image::Ready(include_bytes!({path:?}))"),
                Some(DeviceImage::Unavailable(why)) => format!("::jit::cuda::Image::Unavailable({why:?})"),
                None => "::jit::cuda::Image::Unavailable(\"the kernel was not compiled\")".to_string(),
            };
            let operands: Vec<String> = args.iter().map(|a| format!("&{a}")).collect();
            return format!(
                "#[no_mangle]\npub fn {symbol}<'a>({}) -> {} {{ static IMAGE: ::jit::cuda::Image = {image}; \
                 unsafe {{ ::jit::cuda::launch(&IMAGE, c{:?}, &[{}]) }} }}\n",
                self.operand_params().join(", "),
                self.device_result(),
                cuda.kernel,
                operands.join(", ")
            );
        }
        format!(
            "#[no_mangle]\npub fn {symbol}<'a>({}) -> {} {{ ::jit::ufunc::apply{}({}, {name}, {}) }}\n",
            self.view_params().join(", "),
            self.view_result(),
            self.params.len(),
            args.join(", "),
            self.target == Target::Parallel
        )
    }

    /// The generic function cells call.
    pub(crate) fn cell_wrapper(&self, name: &str, krate: &str, symbol: &str) -> String {
        let n = self.params.len();
        let cuda = self.cuda.is_some();
        let arg_trait = if cuda { "::jit::cuda::CudaArg" } else { "::jit::ufunc::Arg" };
        let generics: Vec<String> = self.params.iter().enumerate().map(|(i, p)| format!("X{i}: {arg_trait}<Elem = {}>", p.rust())).collect();
        let args: Vec<String> = (0..n).map(|i| format!("__jit_{i}: X{i}")).collect();
        // The broadcast dimension: DimMax folded over the arguments' dimensions; for cuda also
        // where the result goes (the GPU if any operand is there).
        let mut dim = "X0::Dim".to_string();
        let mut place = "X0::Place".to_string();
        let mut bounds = Vec::new();
        for i in 1..n {
            bounds.push(format!("{dim}: ::jit::ndarray::DimMax<X{i}::Dim>"));
            dim = format!("<{dim} as ::jit::ndarray::DimMax<X{i}::Dim>>::Output");
            if cuda {
                bounds.push(format!("{place}: ::jit::cuda::Join<X{i}::Place>"));
                place = format!("<{place} as ::jit::cuda::Join<X{i}::Place>>::Out");
            }
        }
        let where_clause = if bounds.is_empty() { String::new() } else { format!(" where {}", bounds.join(", ")) };
        let link = format!("#[link(name = \"{krate}\")] unsafe extern \"C\" {{}}");
        let out = self.output.rust();
        if cuda {
            let operands: Vec<String> = (0..n).map(|i| format!("::jit::cuda::CudaArg::operand(&__jit_{i})")).collect();
            return format!(
                "#[allow(dead_code)]\nfn {name}<{}>({}) -> ::jit::cuda::Output<{place}, {out}, {dim}>{where_clause} {{ {link} \
                 unsafe extern \"Rust\" {{ fn {symbol}<'a>({}) -> {}; }} \
                 <{place} as ::jit::cuda::Place>::finish::<{out}, {dim}>(unsafe {{ {symbol}({}) }}) }}\n",
                generics.join(", "),
                args.join(", "),
                self.operand_params().join(", "),
                self.device_result(),
                operands.join(", ")
            );
        }
        let views: String = (0..n).map(|i| format!("let __v{i} = ::jit::ufunc::Arg::view(&__jit_{i}).into_dyn(); ")).collect();
        let shapes: Vec<String> = (0..n).map(|i| format!("__v{i}.raw_dim()")).collect();
        let broadcast: Vec<String> = (0..n).map(|i| format!("::jit::ufunc::broadcast(&__v{i}, &__shape)")).collect();
        format!(
            "#[allow(dead_code)]\nfn {name}<{}>({}) -> ::jit::ndarray::Array<{out}, {dim}>{where_clause} {{ {link} \
             unsafe extern \"Rust\" {{ fn {symbol}<'a>({}) -> {}; }} \
             {views}let __shape = ::jit::ufunc::broadcast_shape(&[{}]); \
             ::jit::ufunc::into_dim(unsafe {{ {symbol}({}) }}) }}\n",
            generics.join(", "),
            args.join(", "),
            self.view_params().join(", "),
            self.view_result(),
            shapes.join(", "),
            broadcast.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::split;

    use super::*;

    #[test]
    fn options() {
        let parse = |s: &str| parse_options(s.parse().unwrap()).map_err(|(_, m)| m);
        assert_eq!(parse(""), Ok(Target::Cpu));
        assert_eq!(parse("target = \"parallel\""), Ok(Target::Parallel));
        assert_eq!(parse("target = \"cuda\""), Ok(Target::Cuda));
        assert!(parse("target = \"gpu\"").unwrap_err().contains("unknown target \"gpu\""));
        assert!(parse("nopython").unwrap_err().contains("unknown #[vectorize] option"));
    }

    #[test]
    fn the_crate_exports_and_the_cell_wraps() {
        let f = split("#[vectorize(target = \"parallel\")]\nfn scale(x: f64, k: i64) -> f64 { x * k as f64 }").unwrap().functions.remove(0);
        let ufunc = f.vectorize.clone().unwrap();
        assert_eq!((ufunc.target, ufunc.params.clone(), ufunc.output), (Target::Parallel, vec![Scalar::F64, Scalar::I64], Scalar::F64));
        assert_eq!(
            f.export_shim("K", None),
            "#[no_mangle]\npub fn __K<'a>(__jit_0: ::jit::ndarray::ArrayViewD<'a, f64>, __jit_1: ::jit::ndarray::ArrayViewD<'a, i64>) -> ::jit::ndarray::ArrayD<f64> { ::jit::ufunc::apply2(__jit_0, __jit_1, scale, true) }\n"
        );
        let wrapper = f.cell_wrapper("K");
        assert!(wrapper.starts_with("#[allow(dead_code)]\nfn scale<X0: ::jit::ufunc::Arg<Elem = f64>, X1: ::jit::ufunc::Arg<Elem = i64>>(__jit_0: X0, __jit_1: X1) -> ::jit::ndarray::Array<f64, <X0::Dim as ::jit::ndarray::DimMax<X1::Dim>>::Output> where X0::Dim: ::jit::ndarray::DimMax<X1::Dim> {"), "{wrapper}");
        assert!(wrapper.contains("let __shape = ::jit::ufunc::broadcast_shape(&[__v0.raw_dim(), __v1.raw_dim()]);"), "{wrapper}");
        assert!(wrapper.contains("::jit::ufunc::into_dim(unsafe { __K(::jit::ufunc::broadcast(&__v0, &__shape), ::jit::ufunc::broadcast(&__v1, &__shape)) })"), "{wrapper}");
    }

    #[test]
    fn a_cuda_ufunc_launches_its_embedded_kernel() {
        let f = split("let n = 1;\n#[vectorize(target = \"cuda\")]\nfn add_ufunc(x: i64, y: i64) -> i64 { x + y }").unwrap().functions.remove(0);
        let cuda = f.vectorize.as_ref().unwrap().cuda.clone().unwrap();
        assert_eq!(cuda.kernel, "add_ufunc_kernel");
        assert!(cuda.text.contains("#line 3 \"cell\""), "{}", cuda.text);
        assert!(f.export_shim("K", None).contains("::jit::cuda::Image::Unavailable(\"the kernel was not compiled\")"));
        let ready = DeviceImage::Ready("/cache/jit/cuda/add.cubin".to_string());
        let shim = "#[no_mangle]\npub fn __K<'a>(__jit_0: ::jit::cuda::Operand<'a, i64>, __jit_1: ::jit::cuda::Operand<'a, i64>) -> ::jit::cuda::DeviceArray<i64, ::jit::ndarray::IxDyn> { \
             static IMAGE: ::jit::cuda::Image = ::jit::cuda::Image::Ready(include_bytes!(\"/cache/jit/cuda/add.cubin\")); \
             unsafe { ::jit::cuda::launch(&IMAGE, c\"add_ufunc_kernel\", &[&__jit_0, &__jit_1]) } }\n";
        assert_eq!(f.export_shim("K", Some(&ready)), shim);
        assert!(crate::crate_source_with_image(&f, "K", &[], &[], Some(&ready)).text.ends_with(shim));
        let unavailable = DeviceImage::Unavailable("no \"NVRTC\"".to_string());
        let shim = f.export_shim("K", Some(&unavailable));
        assert!(shim.contains("::jit::cuda::Image::Unavailable(\"no \\\"NVRTC\\\"\")"), "{shim}");
        let wrapper = f.cell_wrapper("K");
        assert!(wrapper.contains("fn add_ufunc<X0: ::jit::cuda::CudaArg<Elem = i64>, X1: ::jit::cuda::CudaArg<Elem = i64>>(__jit_0: X0, __jit_1: X1) -> ::jit::cuda::Output<<X0::Place as ::jit::cuda::Join<X1::Place>>::Out, i64, <X0::Dim as ::jit::ndarray::DimMax<X1::Dim>>::Output> where X0::Dim: ::jit::ndarray::DimMax<X1::Dim>, X0::Place: ::jit::cuda::Join<X1::Place> {"), "{wrapper}");
        assert!(wrapper.contains("__K(::jit::cuda::CudaArg::operand(&__jit_0), ::jit::cuda::CudaArg::operand(&__jit_1))"), "{wrapper}");
    }

    #[test]
    fn what_a_ufunc_cannot_be() {
        for (cell, message) in [
            ("#[vectorize]\nfn f(x: &[f64]) -> f64 { x[0] }", "takes and returns scalars"),
            ("#[vectorize]\nfn f() -> f64 { 1.0 }", "1 to 5 arguments"),
            ("#[vectorize]\nfn f(a: f64, b: f64, c: f64, d: f64, e: f64, g: f64) -> f64 { a }", "1 to 5 arguments"),
            ("#[vectorize(target = \"cuda\")]\nfn f(x: i64) -> i64 {\n    for i in 0..x {}\n    x\n}", "a `for` loop"),
        ] {
            let e = split(cell).unwrap_err();
            assert!(e.message.contains(message), "{cell}: {}", e.message);
        }
        let e = split("#[vectorize(target = \"cuda\")]\nfn f(x: i64) -> i64 {\n    for i in 0..x {}\n    x\n}").unwrap_err();
        assert_eq!(e.line, 3);
    }
}
