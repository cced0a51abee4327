//! The waPC guest ABI (wasm32 only): the host imports and the body of `__guest_call`.

#[link(wasm_import_module = "wapc")]
#[allow(unsafe_code)]
// SAFETY: these declarations match the waPC host functions' signatures exactly (pointers and
// lengths are i32 on wasm32, as `usize` and pointers are); every call below passes pointers
// into live Rust allocations of at least the stated length.
unsafe extern "C" {
    fn __guest_request(operation_ptr: *mut u8, payload_ptr: *mut u8);
    fn __guest_response(ptr: *const u8, len: usize);
    fn __guest_error(ptr: *const u8, len: usize);
    fn __host_call(
        binding_ptr: *const u8,
        binding_len: usize,
        namespace_ptr: *const u8,
        namespace_len: usize,
        operation_ptr: *const u8,
        operation_len: usize,
        payload_ptr: *const u8,
        payload_len: usize,
    ) -> usize;
    fn __host_response(ptr: *mut u8);
    fn __host_response_len() -> usize;
    fn __host_error(ptr: *mut u8);
    fn __host_error_len() -> usize;
}

/// Fetches the operation and payload, runs `dispatch`, hands back its response or error.
pub fn handle_call(
    operation_len: i32,
    payload_len: i32,
    dispatch: fn(&str, &[u8]) -> Result<Vec<u8>, String>,
) -> i32 {
    let mut operation = vec![0u8; operation_len.max(0) as usize];
    let mut payload = vec![0u8; payload_len.max(0) as usize];
    #[allow(unsafe_code)]
    // SAFETY: the host writes exactly `operation_len` and `payload_len` bytes, the lengths it
    // passed to `__guest_call`, and both buffers were just allocated with those lengths.
    unsafe {
        __guest_request(operation.as_mut_ptr(), payload.as_mut_ptr())
    };
    let result = match std::str::from_utf8(&operation) {
        Ok(operation) => dispatch(operation, &payload),
        Err(_) => Err("the operation name is not UTF-8".to_string()),
    };
    match result {
        Ok(response) => {
            #[allow(unsafe_code)]
            // SAFETY: `response` is live for the call; the host copies it before returning.
            unsafe {
                __guest_response(response.as_ptr(), response.len())
            };
            1
        }
        Err(message) => {
            #[allow(unsafe_code)]
            // SAFETY: `message` is live for the call; the host copies it before returning.
            unsafe {
                __guest_error(message.as_ptr(), message.len())
            };
            0
        }
    }
}

/// Calls a host capability; `Ok` holds the host's response, `Err` its error.
pub fn host_call(
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    #[allow(unsafe_code)]
    // SAFETY: every pointer/length pair describes a live borrowed slice; the host only reads them.
    let status = unsafe {
        __host_call(
            binding.as_ptr(),
            binding.len(),
            namespace.as_ptr(),
            namespace.len(),
            operation.as_ptr(),
            operation.len(),
            payload.as_ptr(),
            payload.len(),
        )
    };
    if status == 1 {
        #[allow(unsafe_code)]
        // SAFETY: the host reports the response's length, then writes exactly that many bytes
        // into the buffer allocated here with that length.
        let response = unsafe {
            let mut response = vec![0u8; __host_response_len()];
            __host_response(response.as_mut_ptr());
            response
        };
        Ok(response)
    } else {
        #[allow(unsafe_code)]
        // SAFETY: as above, for the error buffer.
        let error = unsafe {
            let mut error = vec![0u8; __host_error_len()];
            __host_error(error.as_mut_ptr());
            error
        };
        Err(String::from_utf8_lossy(&error).into_owned())
    }
}
