//! The rustc zygote: a shared library the kernel preloads (`LD_PRELOAD`) into one rustc per
//! session, built by `kernel/build.rs` and embedded in the binary
//! (`evcxr_backend::rustc_zygote`). A rustc spends ~8 ms of a 2-core machine before its `main`
//! (the dynamic loader relocating librustc_driver and libLLVM, their static constructors), on
//! every cell. Here that is done once: run by the dynamic loader after every other library's
//! constructors, and only when `RJK_RUSTC_ZYGOTE` names a socket, this library never returns in
//! the preloaded process; it listens there and, for each request, forks. The fork takes the
//! request's standard streams, directory and environment, writes its arguments to a file that
//! the zygote's own command line names (`rustc @/proc/self/fd/200`: rustc reads its arguments
//! from an `@file`), and returns into rustc's `main` as a rustc started with them would. The
//! zygote answers the fork's pid, then its wait status when it ends.
//!
//! The zygote ends with its parent (the kernel), serves only its own user, and refuses a request
//! for another rustc than itself; the client then starts rustc as usual. No dependencies: the
//! few C functions and structures it needs are declared here (Linux).

use std::ffi::{CString, c_char, c_int, c_long, c_uint, c_void};

#[used]
#[unsafe(link_section = ".init_array")]
static SERVE: extern "C" fn() = serve_if_asked;

/// The socket to listen on (a path, relative to the directory the zygote started in).
const SOCKET_VAR: &str = "RJK_RUSTC_ZYGOTE";
/// The descriptor of the fork's argument file, named by the zygote's command line.
const ARGS_FD: c_int = 200;
/// The first bytes of a request.
const MAGIC: u32 = 0x5a4a_4b52;

const SOL_SOCKET: c_int = 1;
const SCM_RIGHTS: c_int = 1;
const SO_PEERCRED: c_int = 17;
const AF_UNIX: c_int = 1;
const SOCK_STREAM: c_int = 1;
const SOCK_CLOEXEC: c_int = 0o2000000;
const MSG_NOSIGNAL: c_int = 0x4000;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;
const POLLIN: i16 = 1;
const PR_SET_NAME: c_int = 15;
const SYS_PIDFD_OPEN: c_long = 434;
const EINTR: c_int = 4;
const F_SETFD: c_int = 2;
const SIGKILL: c_int = 9;
const FD_CLOEXEC: c_int = 1;

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    namelen: c_uint,
    iov: *mut IoVec,
    iovlen: usize,
    control: *mut c_void,
    controllen: usize,
    flags: c_int,
}

#[repr(C)]
struct CmsgHdr {
    len: usize,
    level: c_int,
    kind: c_int,
}

#[repr(C)]
struct UCred {
    pid: c_int,
    uid: c_uint,
    gid: c_uint,
}

#[repr(C)]
struct SockAddrUn {
    family: u16,
    path: [c_char; 108],
}

unsafe extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const SockAddrUn, len: c_uint) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn accept4(fd: c_int, addr: *mut c_void, len: *mut c_uint, flags: c_int) -> c_int;
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, len: usize) -> isize;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut c_uint) -> c_int;
    fn poll(fds: *mut PollFd, n: u64, timeout: c_int) -> c_int;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn getppid() -> c_int;
    fn kill(pid: c_int, signal: c_int) -> c_int;
    fn getuid() -> c_uint;
    fn syscall(number: c_long, ...) -> c_long;
    fn close(fd: c_int) -> c_int;
    fn dup2(from: c_int, to: c_int) -> c_int;
    fn chdir(path: *const c_char) -> c_int;
    fn unlink(path: *const c_char) -> c_int;
    fn clearenv() -> c_int;
    fn setenv(name: *const c_char, value: *const c_char, overwrite: c_int) -> c_int;
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64;
    fn prctl(option: c_int, ...) -> c_int;
    fn fcntl(fd: c_int, command: c_int, ...) -> c_int;
    fn readlink(path: *const c_char, buf: *mut c_char, len: usize) -> isize;
    fn __errno_location() -> *mut c_int;
    fn _exit(code: c_int) -> !;
}

extern "C" fn serve_if_asked() {
    let Some(socket) = std::env::var_os(SOCKET_VAR) else { return };
    // From here on this process is the zygote: only its forks reach rustc's `main`.
    match serve(socket.as_encoded_bytes()) {
        Served::Fork => {}
        Served::ParentEnded => unsafe { _exit(0) },
        Served::Failed => unsafe { _exit(1) },
    }
}

/// How [`serve`] returned: in a fork (to become rustc), or in the zygote, which ends.
enum Served {
    Fork,
    ParentEnded,
    Failed,
}

/// A fork being served: its pid, its pidfd (readable when it ends), the client's connection.
struct Fork {
    pid: c_int,
    pidfd: c_int,
    client: c_int,
}

/// Listens on `path` until the parent ends; returns in each fork too.
fn serve(path: &[u8]) -> Served {
    unsafe { prctl(PR_SET_NAME, c"rjk-zygote".as_ptr()) };
    let parent = unsafe { syscall(SYS_PIDFD_OPEN, getppid(), 0) } as c_int;
    let Ok(listener) = bind_socket(path) else { return Served::Failed };
    if parent < 0 || unsafe { getppid() } == 1 {
        return Served::Failed;
    }
    let me = own_exe();
    let mut forks: Vec<Fork> = Vec::new();
    loop {
        let mut fds = vec![PollFd { fd: parent, events: POLLIN, revents: 0 }, PollFd { fd: listener, events: POLLIN, revents: 0 }];
        fds.extend(forks.iter().map(|f| PollFd { fd: f.pidfd, events: POLLIN, revents: 0 }));
        if unsafe { poll(fds.as_mut_ptr(), fds.len() as u64, -1) } < 0 {
            if unsafe { *__errno_location() } == EINTR {
                continue;
            }
            return Served::Failed;
        }
        if fds[0].revents != 0 {
            return Served::ParentEnded;
        }
        for (i, polled) in fds[2..].iter().enumerate().rev() {
            if polled.revents != 0 {
                let fork = forks.remove(i);
                let mut status: c_int = 0;
                unsafe { waitpid(fork.pid, &mut status, 0) };
                send_i32(fork.client, status);
                unsafe {
                    close(fork.pidfd);
                    close(fork.client);
                }
            }
        }
        if fds[1].revents == 0 {
            continue;
        }
        let client = unsafe { accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), SOCK_CLOEXEC) };
        if client < 0 {
            continue;
        }
        let request = match receive(client) {
            Some(request) if same_user(client) && request.rustc == me => request,
            refused => {
                for fd in refused.iter().flat_map(|r| &r.fds) {
                    unsafe { close(*fd) };
                }
                send_i32(client, 0);
                unsafe { close(client) };
                continue;
            }
        };
        match unsafe { fork() } {
            0 => {
                unsafe {
                    close(listener);
                    close(parent);
                    close(client);
                }
                for f in &forks {
                    unsafe {
                        close(f.pidfd);
                        close(f.client);
                    }
                }
                become_rustc(request);
                return Served::Fork;
            }
            pid => {
                for fd in &request.fds {
                    unsafe { close(*fd) };
                }
                let pidfd = if pid > 0 { (unsafe { syscall(SYS_PIDFD_OPEN, pid, 0) }) as c_int } else { -1 };
                if pidfd < 0 {
                    // Not started, or not to be followed (then stopped): the client starts rustc itself.
                    if pid > 0 {
                        unsafe {
                            kill(pid, SIGKILL);
                            waitpid(pid, std::ptr::null_mut(), 0);
                        }
                    }
                    send_i32(client, 0);
                    unsafe { close(client) };
                    continue;
                }
                send_i32(client, pid);
                forks.push(Fork { pid, pidfd, client });
            }
        }
    }
}

fn bind_socket(path: &[u8]) -> Result<c_int, ()> {
    let mut addr = SockAddrUn { family: AF_UNIX as u16, path: [0; 108] };
    if path.is_empty() || path.len() >= addr.path.len() || path.contains(&0) {
        return Err(());
    }
    for (to, from) in addr.path.iter_mut().zip(path) {
        *to = *from as c_char;
    }
    let fd = unsafe { socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) };
    let name = CString::new(path).map_err(drop)?;
    unsafe { unlink(name.as_ptr()) };
    let size = (std::mem::size_of::<u16>() + path.len() + 1) as c_uint;
    if fd < 0 || unsafe { bind(fd, &addr, size) } != 0 || unsafe { listen(fd, 16) } != 0 {
        return Err(());
    }
    Ok(fd)
}

/// This process's executable, as the kernel names rustc in a request (symbolic links resolved).
fn own_exe() -> Vec<u8> {
    let mut buffer = vec![0u8; 4096];
    let n = unsafe { readlink(c"/proc/self/exe".as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    buffer.truncate(n.max(0) as usize);
    buffer
}

fn same_user(client: c_int) -> bool {
    let mut cred = UCred { pid: 0, uid: u32::MAX, gid: 0 };
    let mut len = std::mem::size_of::<UCred>() as c_uint;
    let ok = unsafe { getsockopt(client, SOL_SOCKET, SO_PEERCRED, (&mut cred as *mut UCred).cast(), &mut len) } == 0;
    ok && cred.uid == unsafe { getuid() }
}

fn send_i32(fd: c_int, value: i32) {
    let bytes = value.to_le_bytes();
    unsafe { send(fd, bytes.as_ptr().cast(), bytes.len(), MSG_NOSIGNAL) };
}

/// A request: rustc (the executable the client means), the directory, the arguments, the
/// environment, and the three standard streams.
struct Request {
    rustc: Vec<u8>,
    dir: Vec<u8>,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    fds: Vec<c_int>,
}

/// Reads a request: a header (`MAGIC`, the body's length) that carries the three descriptors,
/// then the body: NUL-separated rustc, directory, argument count, arguments, `NAME=VALUE`s.
fn receive(client: c_int) -> Option<Request> {
    let mut header = [0u8; 8];
    let mut control = [0u64; 8];
    let mut iov = IoVec { base: header.as_mut_ptr().cast(), len: header.len() };
    let mut msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: control.as_mut_ptr().cast(),
        controllen: std::mem::size_of_val(&control),
        flags: 0,
    };
    let n = unsafe { recvmsg(client, &mut msg, MSG_CMSG_CLOEXEC) };
    let mut fds = Vec::new();
    if msg.controllen >= std::mem::size_of::<CmsgHdr>() {
        let cmsg = control.as_ptr().cast::<CmsgHdr>();
        let (len, level, kind) = unsafe { ((*cmsg).len, (*cmsg).level, (*cmsg).kind) };
        if level == SOL_SOCKET && kind == SCM_RIGHTS && len <= msg.controllen {
            let data = unsafe { cmsg.cast::<u8>().add(std::mem::size_of::<CmsgHdr>()) }.cast::<c_int>();
            let count = (len - std::mem::size_of::<CmsgHdr>()) / std::mem::size_of::<c_int>();
            fds.extend((0..count).map(|i| unsafe { data.add(i).read_unaligned() }));
        }
    }
    let refuse = |fds: &[c_int]| {
        for fd in fds {
            unsafe { close(*fd) };
        }
        None
    };
    let magic = u32::from_le_bytes(header[..4].try_into().ok()?);
    let size = u32::from_le_bytes(header[4..].try_into().ok()?) as usize;
    if n != 8 || magic != MAGIC || fds.len() != 3 || size > 16 << 20 {
        return refuse(&fds);
    }
    let mut body = vec![0u8; size];
    let mut got = 0;
    while got < size {
        let n = unsafe { read(client, body[got..].as_mut_ptr().cast(), size - got) };
        if n <= 0 {
            return refuse(&fds);
        }
        got += n as usize;
    }
    let mut fields = body.split(|b| *b == 0).map(<[u8]>::to_vec);
    let (rustc, dir, count) = (fields.next()?, fields.next()?, fields.next()?);
    let Some(count) = std::str::from_utf8(&count).ok().and_then(|c| c.parse::<usize>().ok()) else { return refuse(&fds) };
    let args: Vec<Vec<u8>> = fields.by_ref().take(count).collect();
    let env = fields.filter(|e| !e.is_empty()).collect();
    if args.len() != count {
        return refuse(&fds);
    }
    Some(Request { rustc, dir, args, env, fds })
}

/// In the fork: the request's streams, directory, arguments (the `@file` the command line
/// names) and environment; then back to the dynamic loader and rustc's `main`.
fn become_rustc(request: Request) {
    let fail = |what: &str| -> ! {
        let line = format!("error: the rustc zygote could not {what}\n");
        unsafe {
            write(2, line.as_ptr().cast(), line.len());
            _exit(101)
        }
    };
    for (to, fd) in request.fds.iter().enumerate() {
        if unsafe { dup2(*fd, to as c_int) } < 0 {
            fail("take the standard streams");
        }
    }
    for fd in request.fds.iter().filter(|fd| **fd > 2) {
        unsafe { close(*fd) };
    }
    let dir = CString::new(request.dir).unwrap_or_default();
    if unsafe { chdir(dir.as_ptr()) } != 0 {
        fail("enter the call's directory");
    }
    let file = unsafe { memfd_create(c"rustc-arguments".as_ptr(), 0) };
    let mut text = Vec::new();
    for arg in &request.args {
        text.extend_from_slice(arg);
        text.push(b'\n');
    }
    let written = unsafe { write(file, text.as_ptr().cast(), text.len()) };
    // Closed on exec: rustc reads it before it starts anything (the linker).
    if file < 0 || written != text.len() as isize || unsafe { lseek(file, 0, 0) } != 0 || unsafe { dup2(file, ARGS_FD) } < 0 || unsafe { fcntl(ARGS_FD, F_SETFD, FD_CLOEXEC) } != 0 {
        fail("write the arguments");
    }
    unsafe { close(file) };
    unsafe { clearenv() };
    for entry in &request.env {
        let Some(at) = entry.iter().position(|b| *b == b'=') else { continue };
        let (Ok(name), Ok(value)) = (CString::new(&entry[..at]), CString::new(&entry[at + 1..])) else { continue };
        unsafe { setenv(name.as_ptr(), value.as_ptr(), 1) };
    }
    unsafe { prctl(PR_SET_NAME, c"rustc".as_ptr()) };
}
