//! Times the lesson's function the way IPython's %timeit does (loops through powers of ten
//! until one run takes 0.2 s, then 7 runs); prints the mean seconds per loop.
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).map_or(100, |s| s.parse().unwrap());
    let a = lesson_fn::lesson_array(n);
    let run = |loops: u64| {
        let t0 = Instant::now();
        for _ in 0..loops {
            black_box(lesson_fn::a_plus_tr_tanh_a(black_box(&a)));
        }
        t0.elapsed().as_secs_f64()
    };
    let mut loops = 1;
    while run(loops) < 0.2 {
        loops *= 10;
    }
    let runs: Vec<f64> = (0..7).map(|_| run(loops) / loops as f64).collect();
    println!("{} {}", runs.iter().sum::<f64>() / runs.len() as f64, loops);
}
