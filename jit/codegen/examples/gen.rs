fn main() {
    let cell = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let split = jit_codegen::split(&cell).unwrap();
    for f in &split.functions {
        print!("{}", jit_codegen::crate_source(f, &[], &split.uses).text);
    }
}
