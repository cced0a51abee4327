/* ProcessPrng, what Rust's std draws random bytes from on Windows 10 and newer (bcryptprimitives.dll,
 * part of every such Windows), for Debian's Wine 8, which lacks that DLL: the test puts this beside the
 * .exe it runs under wine (tests/tests/release_archives.rs), never in an archive. It answers from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
