//! Rich output from the runtime (`jit::display`): a `display_data` now, or a part of the cell's
//! result, written on stdout in the markers the kernel (`output.rs`) and evcxr read, after what the
//! cell printed so far (its stdout is flushed first).

use crate::output::{BEGIN_DISPLAY, END_DISPLAY};

/// evcxr's markers around one MIME type of a cell's result (an `evcxr_display` method prints them).
pub const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT";
pub const END_CONTENT: &str = "EVCXR_END_CONTENT";

/// Shows `data` as `mime`: a `display_data` now (`result` false), or one MIME type of the cell's
/// result (`result` true: from a value's `evcxr_display`).
///
/// # Safety
/// `mime` and `data` are valid for `mime_len` and `data_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_display(result: bool, mime: *const u8, mime_len: usize, data: *const u8, data_len: usize) {
    // SAFETY: the caller's contract.
    let (mime, data) = unsafe { (std::slice::from_raw_parts(mime, mime_len), std::slice::from_raw_parts(data, data_len)) };
    let (mime, data) = (String::from_utf8_lossy(mime), String::from_utf8_lossy(data));
    super::stdin::flush_cell_stdout();
    super::say(&markers(result, &mime, &data));
}

fn markers(result: bool, mime: &str, data: &str) -> String {
    let data = data.trim_end_matches('\n');
    if result {
        format!("{BEGIN_CONTENT} {mime}\n{data}\n{END_CONTENT}\n")
    } else {
        format!("{BEGIN_DISPLAY}{mime}\n{data}\n{END_DISPLAY}\n")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markers_the_kernel_and_evcxr_read() {
        assert_eq!(super::markers(false, "image/svg+xml", "<svg/>\n"), "RJK_BEGIN_DISPLAY image/svg+xml\n<svg/>\nRJK_END_DISPLAY\n");
        assert_eq!(super::markers(true, "text/plain", "x"), "EVCXR_BEGIN_CONTENT text/plain\nx\nEVCXR_END_CONTENT\n");
    }
}
