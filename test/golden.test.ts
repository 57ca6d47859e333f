/**
 * Golden logs: every recording under golden/ must still replay, with --verify semantics, to
 * the final icount, hashes and serial transcript recorded next to it. Old logs are never
 * re-recorded to make this pass.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openLog, verifyLog } from "../lib/replay/replayer.ts";
import { existsSync } from "node:fs";
import { GOLDEN, linuxGuestDir } from "../golden/golden.ts";

const DIR = join(import.meta.dir, "..", "golden");

describe("golden logs", () => {
  for (const g of GOLDEN) {
    // A Linux golden log needs the fetched guest (fixtures/linux/fetch.sh): skipped without it.
    const guest = g.linux ? linuxGuestDir() : null;
    const have = !guest || (existsSync(join(guest, "vmlinuz")) && existsSync(join(guest, "initramfs.cpio.gz")));
    if (!have) console.warn(`test/golden.test.ts: ${g.name} SKIPPED: no Linux guest in ${guest} (run fixtures/linux/fetch.sh)`);
    test.skipIf(!have)(`${g.name} replays to its recorded hashes`, () => {
      const exp = JSON.parse(readFileSync(join(DIR, `${g.name}.json`), "utf8"));
      const opened = openLog(join(DIR, `${g.name}.rrx`), { searchDirs: guest ? [guest] : [] });
      let serial = "";
      const r = verifyLog(opened, (ch, b) => { if (ch === "com1") serial += Buffer.from(b).toString("latin1"); });
      r.machine!.flushOutput();
      if (!r.ok) throw new Error(`${g.name}: ${r.mismatch!.text}`);
      expect(r.hashesChecked).toBeGreaterThan(1);
      expect(r.icount).toBe(exp.finalIcount);
      expect(r.end).toEqual(exp.end);
      expect(opened.log.trailer!.hashes).toEqual(exp.hashes);
      expect(serial).toBe(exp.serial);
    }, 600_000);
  }
});
