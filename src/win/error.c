/* Windows error codes to VIGIL_E*.
 *
 * A failed socket operation on Windows speaks one of three dialects,
 * depending on how it was asked:
 *
 *   - a synchronous Winsock call: WSAGetLastError(), WSAE* codes
 *     (WSAECONNRESET, WSAETIMEDOUT, ...);
 *   - GetQueuedCompletionStatus on a failed overlapped operation:
 *     GetLastError(), Win32 codes translated from the kernel's NTSTATUS,
 *     which for a socket are *not* the Winsock ones: a reset arrives as
 *     ERROR_NETNAME_DELETED, a TCP retransmission timeout as
 *     ERROR_SEM_TIMEOUT, an abort as ERROR_CONNECTION_ABORTED;
 *   - the raw NTSTATUS in OVERLAPPED.Internal (GetQueuedCompletionStatusEx
 *     reports no error at all; the status is only there).
 *
 * The backend reads the third and converts it to the second the way the
 * system does (RtlNtStatusToDosError), and vigil__win_error knows the
 * Win32 and the Winsock spellings of every condition vigil reports a cause
 * for, so the same death gets the same VIGIL_E* code however it surfaced.
 *
 * Two mappings deserve a word. WSAENETRESET on an established connection
 * means "keep-alive activity detected a failure" (Microsoft's words for
 * WSARecv/WSASend): that is what ETIMEDOUT means on Linux when keepalive
 * gives up, so it maps there and the runtime classifies it as
 * keepalive_timeout, not as a reset. ERROR_PORT_UNREACHABLE is how a
 * refused ConnectEx completes on some Windows versions: ECONNREFUSED. */
#include <winsock2.h>
#include <windows.h>

#include "error.h"
#include "vigil/errno.h"

typedef ULONG(WINAPI *nt_to_dos_fn)(LONG status);

/* NTSTATUS values used when ntdll cannot translate (never expected). */
#define NT_STATUS_CANCELLED ((LONG)0xC0000120L)

static int win32_error(unsigned long code) {
  switch (code) {
  case ERROR_NETNAME_DELETED:
  case WSAECONNRESET:
  case ERROR_UNEXP_NET_ERR:
    return VIGIL_ECONNRESET;
  case ERROR_CONNECTION_ABORTED:
  case ERROR_REQUEST_ABORTED:
  case WSAECONNABORTED:
    return VIGIL_ECONNABORTED;
  case ERROR_SEM_TIMEOUT:
  case ERROR_TIMEOUT:
  case WAIT_TIMEOUT:
  case WSAETIMEDOUT:
  case WSAENETRESET:
    return VIGIL_ETIMEDOUT;
  case ERROR_HOST_UNREACHABLE:
  case WSAEHOSTUNREACH:
  case WSAEHOSTDOWN:
    return VIGIL_EHOSTUNREACH;
  case ERROR_NETWORK_UNREACHABLE:
  case WSAENETUNREACH:
    return VIGIL_ENETUNREACH;
  case ERROR_CONNECTION_REFUSED:
  case ERROR_PORT_UNREACHABLE:
  case WSAECONNREFUSED:
    return VIGIL_ECONNREFUSED;
  case ERROR_NETWORK_NOT_AVAILABLE:
  case WSAENETDOWN:
    return VIGIL_ENETDOWN;
  case ERROR_BROKEN_PIPE:
  case ERROR_NO_DATA:
  case ERROR_GRACEFUL_DISCONNECT:
  case WSAESHUTDOWN:
  case WSAEDISCON:
    return VIGIL_EPIPE;
  case ERROR_OPERATION_ABORTED: /* == WSA_OPERATION_ABORTED */
    return VIGIL_ECANCELED;
  case WSAEINTR:
    return VIGIL_EINTR;
  case WSAEWOULDBLOCK:
  case ERROR_IO_PENDING: /* == WSA_IO_PENDING */
    return VIGIL_EAGAIN;
  case WSAEINPROGRESS:
    return VIGIL_EINPROGRESS;
  case WSAEALREADY:
    return VIGIL_EALREADY;
  case WSAENOTCONN:
    return VIGIL_ENOTCONN;
  default:
    return 1; /* not a connection-state error: see resource_error */
  }
}

static int resource_error(unsigned long code) {
  switch (code) {
  case WSAEADDRINUSE:
  case ERROR_ADDRESS_ALREADY_ASSOCIATED:
    return VIGIL_EADDRINUSE;
  case WSAEADDRNOTAVAIL:
    return VIGIL_EADDRNOTAVAIL;
  case WSAEAFNOSUPPORT:
  case WSAEPFNOSUPPORT:
    return VIGIL_EAFNOSUPPORT;
  case WSAEMFILE:
  case ERROR_TOO_MANY_OPEN_FILES:
    return VIGIL_EMFILE;
  case WSAENOBUFS:
    return VIGIL_ENOBUFS;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
    return VIGIL_ENOMEM;
  case WSAEACCES:
  case ERROR_ACCESS_DENIED:
    return VIGIL_EACCES;
  case WSAEINVAL:
  case WSAEFAULT:
  case WSAEISCONN:
  case ERROR_INVALID_PARAMETER:
    return VIGIL_EINVAL;
  case WSAENOTSOCK:
  case WSAEBADF:
  case ERROR_INVALID_HANDLE:
    return VIGIL_EBADF;
  case WSAEMSGSIZE:
    return VIGIL_EMSGSIZE;
  case WSAENOPROTOOPT:
    return VIGIL_ENOPROTOOPT;
  case WSAEOPNOTSUPP:
  case WSAEPROTONOSUPPORT:
  case WSAESOCKTNOSUPPORT:
  case ERROR_NOT_SUPPORTED:
    return VIGIL_ENOTSUP;
  case WSANOTINITIALISED:
  case WSASYSNOTREADY:
    return VIGIL_ENOSYS;
  default:
    return VIGIL_EPROTO;
  }
}

int vigil__win_error(unsigned long code) {
  int err;
  if (code == 0)
    return 0;
  err = win32_error(code);
  return err != 1 ? err : resource_error(code);
}

int vigil__win_sock_error(void) {
  return vigil__win_error((unsigned long)WSAGetLastError());
}

static INIT_ONCE to_dos_once = INIT_ONCE_STATIC_INIT;
static nt_to_dos_fn to_dos;

static BOOL CALLBACK find_to_dos(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  (void)once;
  (void)param;
  (void)ctx;
  if (ntdll != NULL)
    to_dos = (nt_to_dos_fn)(void (*)(void))GetProcAddress(ntdll, "RtlNtStatusToDosError");
  return TRUE;
}

int vigil__win_ntstatus(long status) {
  if (status >= 0)
    return 0; /* NT_SUCCESS: success and informational codes */
  (void)InitOnceExecuteOnce(&to_dos_once, find_to_dos, NULL, NULL);
  if (to_dos != NULL)
    return vigil__win_error(to_dos(status));
  return status == NT_STATUS_CANCELLED ? VIGIL_ECANCELED : VIGIL_EPROTO;
}
