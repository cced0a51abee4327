;; no-delete: a waPC admission policy in hand-written WebAssembly text, the smallest complete
;; example of the ABI without any SDK. It rejects every DELETE and accepts everything else.
;;
;; Build: `wat2wasm no-delete.wat` (wabt) or the `wat` crate (`wat::parse_file`), as
;; webhook/tests/examples.rs does. The module needs nothing but the three `__guest_*` imports.
;;
;; How it decides: it looks for the bytes "operation":"DELETE" in the request. The API server
;; sends compact JSON, and supsvc-webhook hands policies the request bytes exactly as received,
;; so that is enough here; a real policy parses the JSON (see the Rust SDK).
(module
  ;; waPC host functions (module "wapc").
  (import "wapc" "__guest_request" (func $guest_request (param $op_ptr i32) (param $ptr i32)))
  (import "wapc" "__guest_response" (func $guest_response (param $ptr i32) (param $len i32)))
  (import "wapc" "__guest_error" (func $guest_error (param $ptr i32) (param $len i32)))

  (memory (export "memory") 1)

  ;; Constant answers, and the needle.                                          offset  length
  (data (i32.const 0)   "{\"accepted\":true}")                                 ;; 0     17
  (data (i32.const 32)  "{\"accepted\":false,\"message\":\"deleting is not allowed here\",\"code\":403}") ;; 32 70
  (data (i32.const 128) "{\"valid\":true}")                                    ;; 128   14
  (data (i32.const 160) "\"v1\"")                                              ;; 160   4
  (data (i32.const 192) "\"operation\":\"DELETE\"")                            ;; 192   20
  (data (i32.const 224) "unknown operation")                                   ;; 224   17

  ;; Where __guest_request writes the operation name and the payload.
  (global $op_at i32 (i32.const 1024))
  (global $payload_at i32 (i32.const 2048))

  ;; waPC initialisation: nothing to register, __guest_call dispatches by operation name length
  ;; ("validate" 8, "protocol_version" 16, "validate_settings" 17).
  (func (export "wapc_init"))

  (func (export "__guest_call") (param $op_len i32) (param $payload_len i32) (result i32)
    (local $needed_pages i32)
    ;; Make room for the payload: the host writes exactly $payload_len bytes at $payload_at.
    (local.set $needed_pages
      (i32.add (i32.shr_u (i32.add (global.get $payload_at) (local.get $payload_len)) (i32.const 16)) (i32.const 1)))
    (if (i32.gt_u (local.get $needed_pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $needed_pages) (memory.size))) (i32.const -1))
          (then unreachable))))
    (call $guest_request (global.get $op_at) (global.get $payload_at))

    (if (i32.eq (local.get $op_len) (i32.const 17))   ;; validate_settings: any settings do
      (then (call $guest_response (i32.const 128) (i32.const 14)) (return (i32.const 1))))
    (if (i32.eq (local.get $op_len) (i32.const 16))   ;; protocol_version
      (then (call $guest_response (i32.const 160) (i32.const 4)) (return (i32.const 1))))
    (if (i32.eq (local.get $op_len) (i32.const 8))    ;; validate
      (then
        (if (call $contains (global.get $payload_at) (local.get $payload_len) (i32.const 192) (i32.const 20))
          (then (call $guest_response (i32.const 32) (i32.const 70)))
          (else (call $guest_response (i32.const 0) (i32.const 17))))
        (return (i32.const 1))))
    (call $guest_error (i32.const 224) (i32.const 17))
    (i32.const 0))

  ;; Whether memory[$hay .. $hay+$hay_len] contains memory[$needle .. $needle+$needle_len].
  (func $contains (param $hay i32) (param $hay_len i32) (param $needle i32) (param $needle_len i32) (result i32)
    (local $start i32) (local $last i32) (local $i i32)
    (if (i32.lt_u (local.get $hay_len) (local.get $needle_len)) (then (return (i32.const 0))))
    (local.set $last (i32.sub (local.get $hay_len) (local.get $needle_len)))
    (block $not_found
      (loop $next_start
        (local.set $i (i32.const 0))
        (block $mismatch
          (loop $next_byte
            (br_if $mismatch
              (i32.ne
                (i32.load8_u (i32.add (i32.add (local.get $hay) (local.get $start)) (local.get $i)))
                (i32.load8_u (i32.add (local.get $needle) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (if (i32.eq (local.get $i) (local.get $needle_len)) (then (return (i32.const 1))))
            (br $next_byte)))
        (br_if $not_found (i32.ge_u (local.get $start) (local.get $last)))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (br $next_start)))
    (i32.const 0))
)
