/**
 * Links between blocks (a block's successor found without looking it up) survive what cannot
 * change the code they lead to, and only that: a CR3 write with CR4.PGE keeps the links among
 * global pages, an INVLPG of a page without code keeps them all, a return to a privilege level
 * finds its links again. These cases check the other side: a link must not lead where a lookup
 * would not.
 */
import { describe, expect, test } from "bun:test";
import { Stop, EAX } from "./cpu.ts";
import { TestMachine, CODE, STACK3, UCODE, UDATA } from "../../../test/cpu/machine.ts";

const G = CODE, U = 0x40000, A = 0x40000, B = 0x60000;
const PD1 = 0x100000, PD2 = 0x104000, PT2 = 0x105000;
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const jmp = (from: number, to: number) => [0xe9, ...le32(to - (from + 5))];
const movEaxHlt = (v: number) => [0xb8, ...le32(v), 0xf4];

/** G (a global page) jumps to U, which maps A (mov eax, 0xA; hlt) through PD1 and B (0xB) through PD2. */
function build(): TestMachine {
  const m = new TestMachine(8 << 20);
  m.flat(0, G);
  m.paging();
  m.cpu.writeCr(4, m.cpu.cr4 | 0x80); // PGE
  m.w32(m.pte(G), m.r32(m.pte(G)) | 0x100);
  for (let i = 0; i < 1024; i++) m.w32(PD2 + i * 4, m.r32(PD1 + i * 4));
  for (let i = 0; i < 1024; i++) m.w32(PT2 + i * 4, m.r32(0x101000 + i * 4));
  m.w32(PD2, PT2 | 7);
  m.w32(PT2 + (U >>> 12) * 4, B | 7);
  m.write(G, jmp(G, U));
  m.write(A, movEaxHlt(0xa));
  m.write(B, movEaxHlt(0xb));
  m.cpu.flushBlocks();
  return m;
}

/** From G again, as often as it takes to get its blocks translated and linked. */
function fromG(m: TestMachine, times = 1): number {
  for (let k = 0; k < times; k++) {
    m.cpu.halted = false;
    m.cpu.eip = G;
    expect(m.cpu.run(1000)).toBe(Stop.HALT);
  }
  return m.cpu.regs[EAX]!;
}

describe("links between blocks", () => {
  for (const jit of [false, true]) {
    const mode = jit ? " (translated)" : "";
    test(`a CR3 write with PGE drops links into a page that is not global${mode}`, () => {
      const m = build();
      if (jit) m.cpu.jitThreshold = 2;
      expect(fromG(m, 5)).toBe(0xa);
      m.cpu.writeCr(3, PD2);
      expect(fromG(m)).toBe(0xb);
      m.cpu.writeCr(3, PD1);
      expect(fromG(m)).toBe(0xa);
    });

    test(`INVLPG of a page with code drops the links into it${mode}`, () => {
      const m = build();
      if (jit) m.cpu.jitThreshold = 2;
      expect(fromG(m, 5)).toBe(0xa);
      m.w32(m.pte(U), B | 7);
      // An INVLPG of a data page changes nothing; the stale entry stays (as on hardware).
      m.cpu.invlpg(0x70000);
      expect(fromG(m)).toBe(0xa);
      m.cpu.invlpg(U);
      expect(fromG(m)).toBe(0xb);
    });
  }

  test("a link the interpreter makes into a page that is not global dies with a CR3 write", () => {
    // G: mov eax, [U] ; jmp U. After a CR3 write has dropped every link, G runs again: the
    // load brings U's page back into the TLB, so the interpreter finds U's block on its own
    // and links G to it. The next CR3 write (with PGE, to tables that map U to B) must drop
    // that link as it drops the ones run()'s lookups make.
    // (At U + 16: G and U itself share a slot of the block cache's direct-mapped L1.)
    const m = build();
    m.write(G, [0xa1, ...le32(U), ...jmp(G + 5, U + 16)]);
    m.write(A + 16, movEaxHlt(0xa));
    m.write(B + 16, movEaxHlt(0xb));
    m.cpu.flushBlocks();
    expect(fromG(m)).toBe(0xa);
    m.cpu.writeCr(3, PD1);
    expect(fromG(m)).toBe(0xa);
    m.cpu.writeCr(3, PD2);
    expect(fromG(m)).toBe(0xb);
  });

  test("a link made at CPL 0 into a supervisor page is not followed at CPL 3", () => {
    const m = new TestMachine(8 << 20);
    const S = CODE, K = CODE + 0x2000;
    m.flat(0, S);
    m.paging();
    m.w32(m.pte(K), (K & ~0xfff) | 3); // supervisor only
    m.write(S, jmp(S, K));
    // K: at CPL 0, IRET to S at CPL 3 (its JMP K must then fault: #PF, vector 14).
    m.write(K, [0x6a, UDATA, 0x68, ...le32(STACK3), 0x6a, 0x02, 0x6a, UCODE, 0x68, ...le32(S), 0xcf]);
    m.cpu.flushBlocks();
    expect(m.cpu.run(1000)).toBe(Stop.HALT);
    const x = m.exception();
    expect(x?.vector).toBe(14);
    expect(x?.eip).toBe(K); // the fetch at K faults, after the JMP
    expect(m.cpu.cr2).toBe(K);
  });
});
