//! The WebAssembly ABI of gmon's target inspector. Everything crossing the
//! boundary is a u32 pointer/length into linear memory; results and error
//! messages are left in one buffer read via `gmon_result_ptr/len`, and calls
//! return 0 for success and 1 for an error. One instance inspects one
//! executable, so the opened target is a per-instance global.

pub mod buildinfo;
pub mod dwarf;
pub mod elf;
pub mod error;
mod json;
pub mod target;

use error::Error;
use std::cell::RefCell;
use target::Target;

thread_local! {
    static TARGET: RefCell<Option<Target>> = RefCell::new(None);
    static RESULT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

const OK: u32 = 0;
const ERR: u32 = 1;

fn finish(r: Result<String, Error>) -> u32 {
    let (text, code) = match r {
        Ok(text) => (text, OK),
        Err(e) => (e.to_string(), ERR),
    };
    RESULT.with(|res| *res.borrow_mut() = text.into_bytes());
    code
}

fn with_target(f: impl FnOnce(&mut Target) -> Result<String, Error>) -> u32 {
    let r = TARGET.with(|t| match t.borrow_mut().as_mut() {
        Some(target) => f(target),
        None => Err(Error::Usage("no target opened (call gmon_open first)".into())),
    });
    finish(r)
}

/// Borrows `len` bytes at `ptr` as the host wrote them.
///
/// # Safety
/// `ptr..ptr+len` must be inside linear memory and not freed during the call.
unsafe fn host_bytes<'a>(ptr: u32, len: u32) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(ptr as usize as *const u8, len as usize)
}

/// Allocates `len` zeroed bytes for the host to fill; pair with `gmon_free`
/// (or hand to `gmon_open`, which takes ownership).
#[no_mangle]
pub extern "C" fn gmon_alloc(len: u32) -> u32 {
    let buf = vec![0u8; len as usize].into_boxed_slice();
    Box::into_raw(buf) as *mut u8 as usize as u32
}

/// Frees a buffer from `gmon_alloc` with the same length.
///
/// # Safety
/// `ptr`/`len` must come from one `gmon_alloc` call not yet freed or opened.
#[no_mangle]
pub unsafe extern "C" fn gmon_free(ptr: u32, len: u32) {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len as usize);
    drop(Box::from_raw(slice));
}

/// Opens the ELF image in a `gmon_alloc` buffer, taking ownership of it (it is
/// freed here on error, or when the next open replaces the target).
///
/// # Safety
/// As for `gmon_free`.
#[no_mangle]
pub unsafe extern "C" fn gmon_open(ptr: u32, len: u32) -> u32 {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len as usize);
    let data = Box::from_raw(slice).into_vec();
    // Drop the previous target first so peak memory holds one image, not two.
    TARGET.with(|t| *t.borrow_mut() = None);
    let r = Target::open(data).map(|target| {
        TARGET.with(|t| *t.borrow_mut() = Some(target));
        String::new()
    });
    finish(r)
}

/// JSON facts about the open target (see `Target::info_json`).
#[no_mangle]
pub extern "C" fn gmon_info() -> u32 {
    with_target(|t| t.info_json())
}

/// JSON `{name, addr, size, offset}` for a function by exact symbol name.
///
/// # Safety
/// `name_ptr..+name_len` must be readable linear memory.
#[no_mangle]
pub unsafe extern "C" fn gmon_function(name_ptr: u32, name_len: u32) -> u32 {
    let bytes = host_bytes(name_ptr, name_len);
    with_target(|t| {
        let name = std::str::from_utf8(bytes).map_err(|_| Error::Usage("function name is not UTF-8".into()))?;
        t.function_json(name)
    })
}

/// Symbolizes `n` little-endian u64 pcs at `pcs_ptr` into the compact text
/// form: `func\tfile\tline` frames joined by "\n", pcs joined by "\x1e".
///
/// # Safety
/// `pcs_ptr..+8n` must be readable linear memory.
#[no_mangle]
pub unsafe extern "C" fn gmon_symbolize(pcs_ptr: u32, n: u32) -> u32 {
    let bytes = match n.checked_mul(8) {
        Some(len) => host_bytes(pcs_ptr, len),
        None => return finish(Err(Error::Usage("too many pcs".into()))),
    };
    let pcs: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    with_target(|t| t.symbolize_text(&pcs))
}

/// Address of the last result or error text (UTF-8).
#[no_mangle]
pub extern "C" fn gmon_result_ptr() -> u32 {
    RESULT.with(|r| r.borrow().as_ptr() as usize as u32)
}

/// Length in bytes of the last result or error text.
#[no_mangle]
pub extern "C" fn gmon_result_len() -> u32 {
    RESULT.with(|r| r.borrow().len() as u32)
}
