//! Rich output of runtime values in the notebook: a `display_data` now ([`show`]), or a MIME type of
//! the cell's result ([`result_part`], from a value's `evcxr_display`). Through the kernel binary's
//! `rjk_display` (found with `dlsym`, as `input.rs` finds `rjk_input`), which writes the markers the
//! kernel reads after what the cell printed; outside the kernel, the text/plain part is printed.
//! Charts are drawn by the binary too ([`chart_svg`]).

use std::ffi::c_void;

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
}

type Display = unsafe extern "C" fn(bool, *const u8, usize, *const u8, usize);

fn send(result: bool, parts: &[(&str, &str)]) {
    // SAFETY: a NUL-terminated name with RTLD_DEFAULT (null); the symbol has this signature.
    let display = unsafe { dlsym(std::ptr::null_mut(), c"rjk_display".as_ptr()) };
    if display.is_null() {
        if let Some((_, text)) = parts.iter().find(|(mime, _)| *mime == "text/plain") {
            println!("{text}");
        }
        return;
    }
    // SAFETY: `rjk_display` of the kernel binary, with this signature.
    let display: Display = unsafe { std::mem::transmute(display) };
    for (mime, data) in parts {
        // SAFETY: live buffers of the lengths given.
        unsafe { display(result, mime.as_ptr(), mime.len(), data.as_ptr(), data.len()) };
    }
}

/// Shows `data` as one `display_data` of type `mime` now.
pub fn show(mime: &str, data: &str) {
    send(false, &[(mime, data)]);
}

/// Adds these MIME types to the cell's result (call from a value's `evcxr_display`).
pub fn result_part(parts: &[(&str, &str)]) {
    send(true, parts);
}

type Render = unsafe extern "C" fn(*const u8, usize, unsafe extern "C" fn(*mut c_void, *const u8, usize), *mut c_void);

/// Receives the renderer's SVG into the `String` behind `out`.
unsafe extern "C" fn receive(out: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `out` is the `String` `chart_svg` passed; `data` is valid for `len` bytes.
    unsafe { (*out.cast::<String>()).push_str(&String::from_utf8_lossy(std::slice::from_raw_parts(data, len))) };
}

/// The SVG of a chart (its [`crate::chart::Chart::spec`]), drawn by the kernel binary's
/// `rjk_chart_svg`; `None` outside the kernel.
pub fn chart_svg(spec: &str) -> Option<String> {
    // SAFETY: a NUL-terminated name with RTLD_DEFAULT (null).
    let render = unsafe { dlsym(std::ptr::null_mut(), c"rjk_chart_svg".as_ptr()) };
    if render.is_null() {
        return None;
    }
    // SAFETY: `rjk_chart_svg` of the kernel binary, with this signature.
    let render: Render = unsafe { std::mem::transmute(render) };
    let mut svg = String::new();
    // SAFETY: a live buffer of the length given; `receive` is called with `svg` only while it lives.
    unsafe { render(spec.as_ptr(), spec.len(), receive, (&mut svg as *mut String).cast()) };
    Some(svg)
}
