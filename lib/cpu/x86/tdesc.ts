/**
 * The i386 register file as gdb sees it (RegisterLayout, lib/cpu/contract.ts): the target
 * description the stub sends (qXfer:features:read:target.xml) and the g packet's layout.
 *
 * gdb's i386 support requires the feature "org.gnu.gdb.i386.core" with the
 * 16 general registers AND the 16 x87 registers (i386_validate_tdesc_p
 * checks all of them), so the description declares the full standard
 * 32bit-core set; the g packet always carries all of them:
 *   16 x 4 bytes (eax..gs) + 8 x 10 bytes (st0..st7) + 8 x 4 bytes (fctrl..fop)
 *   = 176 bytes = 352 hex digits.
 */

import type { RegisterLayout } from "../contract.ts";

export const NUM_CORE_REGS = 32;

/** Byte size of each register of the description, by gdb register number. */
export const REG_SIZES: readonly number[] = [
  ...Array<number>(16).fill(4),
  ...Array<number>(8).fill(10),
  ...Array<number>(8).fill(4),
];

export const G_PACKET_BYTES = REG_SIZES.reduce((a, b) => a + b, 0); // 176

/** Byte offset of register n inside the g packet. */
export function regOffset(n: number): number {
  let off = 0;
  for (let i = 0; i < n; i++) off += REG_SIZES[i];
  return off;
}

export const TARGET_XML = `<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>i386</architecture>
  <feature name="org.gnu.gdb.i386.core">
    <flags id="i386_eflags" size="4">
      <field name="CF" start="0" end="0"/>
      <field name="" start="1" end="1"/>
      <field name="PF" start="2" end="2"/>
      <field name="AF" start="4" end="4"/>
      <field name="ZF" start="6" end="6"/>
      <field name="SF" start="7" end="7"/>
      <field name="TF" start="8" end="8"/>
      <field name="IF" start="9" end="9"/>
      <field name="DF" start="10" end="10"/>
      <field name="OF" start="11" end="11"/>
      <field name="NT" start="14" end="14"/>
      <field name="RF" start="16" end="16"/>
      <field name="VM" start="17" end="17"/>
      <field name="AC" start="18" end="18"/>
      <field name="VIF" start="19" end="19"/>
      <field name="VIP" start="20" end="20"/>
      <field name="ID" start="21" end="21"/>
    </flags>
    <reg name="eax" bitsize="32" type="int32" regnum="0"/>
    <reg name="ecx" bitsize="32" type="int32"/>
    <reg name="edx" bitsize="32" type="int32"/>
    <reg name="ebx" bitsize="32" type="int32"/>
    <reg name="esp" bitsize="32" type="data_ptr"/>
    <reg name="ebp" bitsize="32" type="data_ptr"/>
    <reg name="esi" bitsize="32" type="int32"/>
    <reg name="edi" bitsize="32" type="int32"/>
    <reg name="eip" bitsize="32" type="code_ptr"/>
    <reg name="eflags" bitsize="32" type="i386_eflags"/>
    <reg name="cs" bitsize="32" type="int32"/>
    <reg name="ss" bitsize="32" type="int32"/>
    <reg name="ds" bitsize="32" type="int32"/>
    <reg name="es" bitsize="32" type="int32"/>
    <reg name="fs" bitsize="32" type="int32"/>
    <reg name="gs" bitsize="32" type="int32"/>
    <reg name="st0" bitsize="80" type="i387_ext"/>
    <reg name="st1" bitsize="80" type="i387_ext"/>
    <reg name="st2" bitsize="80" type="i387_ext"/>
    <reg name="st3" bitsize="80" type="i387_ext"/>
    <reg name="st4" bitsize="80" type="i387_ext"/>
    <reg name="st5" bitsize="80" type="i387_ext"/>
    <reg name="st6" bitsize="80" type="i387_ext"/>
    <reg name="st7" bitsize="80" type="i387_ext"/>
    <reg name="fctrl" bitsize="32" type="int" group="float"/>
    <reg name="fstat" bitsize="32" type="int" group="float"/>
    <reg name="ftag" bitsize="32" type="int" group="float"/>
    <reg name="fiseg" bitsize="32" type="int" group="float"/>
    <reg name="fioff" bitsize="32" type="int" group="float"/>
    <reg name="foseg" bitsize="32" type="int" group="float"/>
    <reg name="fooff" bitsize="32" type="int" group="float"/>
    <reg name="fop" bitsize="32" type="int" group="float"/>
  </feature>
</target>
`;

/** The i386 layout: 16 general registers, then the x87 ones; a stop expedites eip, esp, ebp. */
export const I386_LAYOUT: RegisterLayout = {
  targetXml: TARGET_XML,
  sizes: REG_SIZES,
  general: 16,
  pc: 8,
  expedite: [8, 4, 5],
};
