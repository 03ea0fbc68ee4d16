"""Jupyter's own conformance suite (jupyter_kernel_test) with every sample filled in."""
import jupyter_kernel_test as jkt

from kernel_client import KERNEL_NAME


class RustJitKernelTests(jkt.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("a message on stderr");'

    completion_samples = [
        {"text": "let zzz_completion_probe = 1; zzz_completion_pr", "matches": {"zzz_completion_probe"}},
    ]
    complete_code_samples = ["1 + 1", "let a = 1;", "fn f() -> i32 {\n    1\n}", 'let s = "{";']
    incomplete_code_samples = ["fn f() {", "let v = vec![1,", 'let s = "open', "/* comment"]
    invalid_code_samples = ["fn f() }", "(]"]

    code_generate_error = 'let x: i32 = "not a number";'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"rust".to_uppercase()', "result": '"RUST"'},
        {"code": 'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT");', "mime": "text/html"},
    ]
    code_display_data = [
        {"code": 'println!("RJK_BEGIN_DISPLAY text/html"); println!("<i>shown</i>"); println!("RJK_END_DISPLAY");',
         "mime": "text/html"},
        {"code": 'println!("RJK_BEGIN_DISPLAY image/svg+xml\\n<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>\\nRJK_END_DISPLAY");',
         "mime": "image/svg+xml"},
    ]

    code_history_pattern = "6*"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "std::mem::swap"

    code_page_something = "?std::mem::swap"

    code_clear_output = 'println!("RJK_CLEAR_OUTPUT");'


class RustJitIopubWelcome(jkt.IopubWelcomeTests):
    kernel_name = KERNEL_NAME
    support_iopub_welcome = True
