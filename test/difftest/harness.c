/*
 * Native oracle for rrx's CPU core: runs generated i386 code on the host CPU (gcc -m32).
 *
 * stdin: a stream of cases, each
 *   u32 codeLen, u32 dataAddr, u32 dataLen, u32 regs[8] (eax..edi), u32 eflags, code, data
 * stdout: per case
 *   u32 status (0, or the signal number), u32 eip (at the fault), u32 trapno, u32 err,
 *   u32 nsteps, nsteps x { u32 eip, u32 regs[8], u32 eflags }, u32 regs[8], u32 eflags, data
 *
 * With TF set in the input EFLAGS the code is single-stepped (SIGTRAP after every
 * instruction, and after every iteration of a REP string instruction) and the state after
 * each step is recorded: the first record is the entry state.
 *
 * Code is copied to CODE_BASE in a fixed RWX region, followed by `jmp [ret_ptr]`; all GPRs
 * (ESP included: the stack lives in the sandbox) and EFLAGS are loaded from the record.
 * A fault is caught on an alternate signal stack and reported with the register state of
 * the faulting instruction.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define REGION 0x00100000u
#define REGION_SIZE 0x00010000u

uint32_t in_regs[8], in_flags, out_regs[8], out_flags, saved_esp, out_eip, out_trap, out_err;
void *code_ptr = (void *)REGION;
extern void run_case(void);
extern char run_case_ret[];
void *ret_ptr = run_case_ret;
static sigjmp_buf jb;
#define MAX_STEPS 4096
static uint32_t trace[MAX_STEPS][10];
static uint32_t nsteps, code_len;

__asm__(
  ".text\n"
  ".globl run_case\n"
  "run_case:\n"
  "  pushal\n"
  "  pushfl\n"
  "  movl %esp, saved_esp\n"
  "  pushl in_flags\n"
  "  popfl\n"
  "  movl in_regs+4, %ecx\n"
  "  movl in_regs+8, %edx\n"
  "  movl in_regs+12, %ebx\n"
  "  movl in_regs+20, %ebp\n"
  "  movl in_regs+24, %esi\n"
  "  movl in_regs+28, %edi\n"
  "  movl in_regs+0, %eax\n"
  "  movl in_regs+16, %esp\n"
  "  jmp *code_ptr\n"
  ".globl run_case_ret\n"
  "run_case_ret:\n"
  "  movl %eax, out_regs+0\n"
  "  movl %ecx, out_regs+4\n"
  "  movl %edx, out_regs+8\n"
  "  movl %ebx, out_regs+12\n"
  "  movl %esp, out_regs+16\n"
  "  movl %ebp, out_regs+20\n"
  "  movl %esi, out_regs+24\n"
  "  movl %edi, out_regs+28\n"
  "  movl saved_esp, %esp\n"
  "  pushfl\n"
  "  popl out_flags\n"
  "  andl $0xfffffeff, out_flags\n"
  "  popfl\n"
  "  popal\n"
  "  ret\n");

static void on_signal(int sig, siginfo_t *si, void *ctx) {
  (void)si;
  ucontext_t *uc = ctx;
  greg_t *g = uc->uc_mcontext.gregs;
  if (sig == SIGTRAP && g[REG_TRAPNO] == 1 && (g[REG_EFL] & 0x100)) {
    uint32_t eip = g[REG_EIP];
    if (eip >= REGION && eip <= REGION + code_len) {
      if (nsteps < MAX_STEPS) {
        uint32_t *t = trace[nsteps];
        t[0] = eip; t[1] = g[REG_EAX]; t[2] = g[REG_ECX]; t[3] = g[REG_EDX]; t[4] = g[REG_EBX];
        t[5] = g[REG_ESP]; t[6] = g[REG_EBP]; t[7] = g[REG_ESI]; t[8] = g[REG_EDI]; t[9] = g[REG_EFL] & ~0x100u;
      }
      nsteps++;
    }
    if (eip == REGION + code_len) g[REG_EFL] &= ~0x100; /* reached the stub: stop stepping */
    return;
  }
  out_regs[0] = g[REG_EAX]; out_regs[1] = g[REG_ECX]; out_regs[2] = g[REG_EDX]; out_regs[3] = g[REG_EBX];
  out_regs[4] = g[REG_ESP]; out_regs[5] = g[REG_EBP]; out_regs[6] = g[REG_ESI]; out_regs[7] = g[REG_EDI];
  out_flags = g[REG_EFL] & ~0x100u;
  out_eip = g[REG_EIP];
  out_trap = g[REG_TRAPNO];
  out_err = g[REG_ERR];
  siglongjmp(jb, sig);
}

static int readall(void *p, size_t n) {
  char *c = p;
  while (n) { ssize_t r = read(0, c, n); if (r <= 0) return 0; c += r; n -= (size_t)r; }
  return 1;
}
static char obuf[1 << 16];
static size_t olen;
static void out(const void *p, size_t n) {
  if (olen + n > sizeof obuf) { fwrite(obuf, 1, olen, stdout); olen = 0; }
  if (n > sizeof obuf) { fwrite(p, 1, n, stdout); return; }
  memcpy(obuf + olen, p, n); olen += n;
}

int main(void) {
  void *r = mmap((void *)REGION, REGION_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (r != (void *)REGION) { fprintf(stderr, "harness: cannot map 0x%x\n", REGION); return 2; }
  static char altstack[65536];
  stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  int sigs[] = { SIGFPE, SIGSEGV, SIGILL, SIGBUS, SIGTRAP, SIGALRM };
  for (unsigned k = 0; k < sizeof sigs / sizeof sigs[0]; k++) sigaction(sigs[k], &sa, NULL);
  for (;;) {
    uint32_t hdr[3];
    if (!readall(hdr, sizeof hdr)) break;
    uint32_t codeLen = hdr[0], dataAddr = hdr[1], dataLen = hdr[2];
    if (!readall(in_regs, sizeof in_regs) || !readall(&in_flags, 4)) return 3;
    if (codeLen + 6 > REGION_SIZE || dataAddr < REGION || dataAddr + dataLen > REGION + REGION_SIZE) { fprintf(stderr, "harness: bad case\n"); return 3; }
    memset((void *)REGION, 0xcc, REGION_SIZE);
    if (!readall((void *)REGION, codeLen)) return 3;
    unsigned char *stub = (unsigned char *)REGION + codeLen;
    stub[0] = 0xff; stub[1] = 0x25; /* jmp dword [ret_ptr] */
    uint32_t rp = (uint32_t)(uintptr_t)&ret_ptr;
    memcpy(stub + 2, &rp, 4);
    if (!readall((void *)(uintptr_t)dataAddr, dataLen)) return 3;
    uint32_t status = 0;
    out_eip = out_trap = out_err = 0;
    nsteps = 0; code_len = codeLen;
    int sig = sigsetjmp(jb, 1);
    if (sig == 0) { alarm(5); run_case(); } else status = (uint32_t)sig;
    alarm(0);
    uint32_t res[4] = { status, out_eip, out_trap, out_err };
    out(res, sizeof res);
    uint32_t ns = nsteps < MAX_STEPS ? nsteps : MAX_STEPS;
    out(&ns, 4);
    out(trace, ns * 40);
    out(out_regs, sizeof out_regs);
    out(&out_flags, 4);
    out((void *)(uintptr_t)dataAddr, dataLen);
  }
  fwrite(obuf, 1, olen, stdout);
  return 0;
}
