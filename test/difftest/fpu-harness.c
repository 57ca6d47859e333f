/*
 * The x87 oracle: runs x87 instruction sequences on the host CPU. Built with gcc -m32, or as a
 * 64-bit program where the host cannot run 32-bit ones (a kernel without IA32 emulation): the
 * x87 behaves the same in 64-bit mode (the stubs address memory through [rbx], and FNSAVE/FRSTOR
 * without REX.W use the 32-bit protected-mode image).
 *
 * stdin, per case (little-endian): u32 ninsn, u32 eflags, 108-byte FRSTOR image (32-bit
 * protected-mode layout), 112 bytes of memory (EBX points at it during each instruction), then
 * ninsn records of 16 bytes (u8 length, up to 15 instruction bytes).
 * stdout, per case: u32 nexec, then per executed instruction: the 108-byte FNSAVE image, the
 * 112 bytes of memory, u32 EFLAGS, u32 EAX. A sequence stops after an instruction that leaves
 * an unmasked exception pending (FSW.ES), since the next waiting instruction would fault.
 *
 * Each instruction runs in a stub: mov eax, 0x5a5a5a5a; push [fl_in]; popfd; <insn>; pushfd;
 * pop [fl_out]; mov [ax_out], eax. EFLAGS carry from one instruction to the next.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint8_t fpu_mem[112] __attribute__((aligned(16)));
uint8_t fpu_img[108] __attribute__((aligned(16)));
#ifdef __x86_64__
uint64_t fl_in, fl_out; /* PUSH/POP of a qword */
#else
uint32_t fl_in, fl_out;
#endif
uint32_t ax_out;

static int readn(void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t r = read(0, b, n);
    if (r <= 0) return 0;
    b += r; n -= (size_t)r;
  }
  return 1;
}

static uint8_t outbuf[1 << 16];
static size_t outlen;
static void flush(void) {
  size_t o = 0;
  while (o < outlen) { ssize_t w = write(1, outbuf + o, outlen - o); if (w <= 0) _exit(1); o += (size_t)w; }
  outlen = 0;
}
static void out(const void *p, size_t n) {
  if (outlen + n > sizeof outbuf) flush();
  memcpy(outbuf + outlen, p, n); outlen += n;
}

static void put32(uint8_t **p, uint32_t v) { memcpy(*p, &v, 4); *p += 4; }

int main(void) {
  uint8_t *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) return 1;
  for (;;) {
    uint32_t hdr[2];
    uint8_t img[108], insns[64][16];
    if (!readn(hdr, 8)) break;
    if (!readn(img, 108) || !readn(fpu_mem, 112) || hdr[0] > 64 || !readn(insns, 16 * hdr[0])) return 1;
    fl_in = hdr[1];
    memcpy(fpu_img, img, 108);
    __asm__ volatile("fninit\n\tfrstor fpu_img" ::: "memory");
    uint8_t res[64][228];
    uint32_t nexec = 0;
    for (uint32_t i = 0; i < hdr[0]; i++) {
      uint8_t *p = code;
      *p++ = 0x53;                                  /* push ebx */
      *p++ = 0xbb; put32(&p, (uint32_t)(uintptr_t)fpu_mem);   /* mov ebx, fpu_mem */
      *p++ = 0xb8; put32(&p, 0x5a5a5a5a);           /* mov eax, imm */
#ifdef __x86_64__
      /* absolute addressing through a SIB byte (mod 00, rm 100, base 101): no RIP-relative */
      *p++ = 0xff; *p++ = 0x34; *p++ = 0x25; put32(&p, (uint32_t)(uintptr_t)&fl_in); /* push qword [fl_in] */
      *p++ = 0x9d;                                  /* popfq */
      memcpy(p, insns[i] + 1, insns[i][0]); p += insns[i][0];
      *p++ = 0x9c;                                  /* pushfq */
      *p++ = 0x8f; *p++ = 0x04; *p++ = 0x25; put32(&p, (uint32_t)(uintptr_t)&fl_out); /* pop qword [fl_out] */
      *p++ = 0x89; *p++ = 0x04; *p++ = 0x25; put32(&p, (uint32_t)(uintptr_t)&ax_out); /* mov [ax_out], eax */
#else
      *p++ = 0xff; *p++ = 0x35; put32(&p, (uint32_t)(uintptr_t)&fl_in); /* push [fl_in] */
      *p++ = 0x9d;                                  /* popfd */
      memcpy(p, insns[i] + 1, insns[i][0]); p += insns[i][0];
      *p++ = 0x9c;                                  /* pushfd */
      *p++ = 0x8f; *p++ = 0x05; put32(&p, (uint32_t)(uintptr_t)&fl_out); /* pop [fl_out] */
      *p++ = 0xa3; put32(&p, (uint32_t)(uintptr_t)&ax_out);  /* mov [ax_out], eax */
#endif
      *p++ = 0x5b;                                  /* pop ebx */
      *p++ = 0xc3;                                  /* ret */
      ((void (*)(void))code)();
      __asm__ volatile("fnsave fpu_img" ::: "memory");
      uint8_t *r = res[nexec++];
      memcpy(r, fpu_img, 108);
      memcpy(r + 108, fpu_mem, 112);
      { uint32_t f32 = (uint32_t)fl_out; memcpy(r + 220, &f32, 4); }
      memcpy(r + 224, &ax_out, 4);
      fl_in = fl_out;
      if (fpu_img[4] & 0x80) break;                 /* ES: unmasked exception pending */
      __asm__ volatile("frstor fpu_img" ::: "memory");
    }
    __asm__ volatile("fninit");
    out(&nexec, 4);
    for (uint32_t i = 0; i < nexec; i++) out(res[i], 228);
  }
  flush();
  return 0;
}
