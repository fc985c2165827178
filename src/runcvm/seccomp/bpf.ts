/**
 * SeccompPlan → classic BPF, the program seccomp(2) loads (struct sock_filter[]: code u16, jt u8, jf u8, k u32;
 * little-endian, 8 bytes each). Layout:
 *   load arch → jump to the section of x86-64 / i386, else the bad-architecture return (kill);
 *   a section: load nr; (x86-64: an x32 number goes to the x32 section, or is killed without one); runc's -ENOSYS
 *   bound; then a binary search over the numbers that have rules (leaves: an unconditional return, or each chain's
 *   argument comparisons on 32-bit halves, in order, then the default); numbers without rules get the default.
 * Every return value has one `ret` at the end; a conditional jump farther than 255 instructions goes through `ja`.
 * Pure. The guest only loads the result (src/runcvm/guest/seccomp.c).
 */
import { AUDIT_ARCH, ENOSYS, RET, type ArchPlan, type Chain, type Cond, type SeccompPlan } from './plan.js';
import { X32_SYSCALL_BIT } from './headers.js';

/** linux/filter.h opcodes used here */
export const BPF = {
  LD_W_ABS: 0x20,
  ALU_AND_K: 0x54,
  JMP_JA: 0x05,
  JMP_JEQ_K: 0x15,
  JMP_JGT_K: 0x25,
  JMP_JGE_K: 0x35,
  RET_K: 0x06,
} as const;
/** the kernel's limit on a program (BPF_MAXINSNS) */
export const BPF_MAXINSNS = 4096;

/** offsets in struct seccomp_data */
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLo = (i: number) => 16 + 8 * i;
const argHi = (i: number) => 20 + 8 * i;

export interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

type Label = number;
/** an instruction before layout: conditional jumps name labels (or fall through to the next instruction) */
type Item =
  | { kind: 'label'; label: Label }
  | { kind: 'stmt'; code: number; k: number }
  | { kind: 'jump'; code: number; k: number; t: Label | 'next'; f: Label | 'next' }
  | { kind: 'ja'; to: Label };

export class SeccompProgramTooLarge extends Error {}

class Builder {
  items: Item[] = [];
  private next = 0;
  private rets = new Map<number, Label>();

  label(): Label {
    return this.next++;
  }
  place(label: Label): void {
    this.items.push({ kind: 'label', label });
  }
  load(off: number): void {
    this.items.push({ kind: 'stmt', code: BPF.LD_W_ABS, k: off });
  }
  and(k: number): void {
    this.items.push({ kind: 'stmt', code: BPF.ALU_AND_K, k: k >>> 0 });
  }
  jump(code: number, k: number, t: Label | 'next', f: Label | 'next'): void {
    this.items.push({ kind: 'jump', code, k: k >>> 0, t, f });
  }
  ja(to: Label): void {
    this.items.push({ kind: 'ja', to });
  }
  /** the label of `ret value` (one per value, placed at the end) */
  ret(value: number): Label {
    let l = this.rets.get(value >>> 0);
    if (l === undefined) {
      l = this.label();
      this.rets.set(value >>> 0, l);
    }
    return l;
  }
  finish(): Instruction[] {
    for (const [value, label] of this.rets) {
      this.place(label);
      this.items.push({ kind: 'stmt', code: BPF.RET_K, k: value });
    }
    return assemble(this.items);
  }
}

/** How a conditional jump is laid out: one instruction, or with `ja` for a target beyond 255 (far true side:
 * `jcond 0,1+f; ja T`; far false side: `jcond 1+t,0; ja F`; both: `jcond 0,1; ja T; ja F`). */
type JumpForm = 'short' | 'farT' | 'farF' | 'both';
const FORM_SIZE: Record<JumpForm, number> = { short: 1, farT: 2, farF: 2, both: 3 };

/** Labels → offsets, widening jumps until every offset fits (forms only widen, so this ends). */
export function assemble(items: Item[]): Instruction[] {
  const form = new Map<number, JumpForm>();
  for (;;) {
    const at = new Map<Label, number>();
    const pos: number[] = [];
    let n = 0;
    items.forEach((it, i) => {
      pos[i] = n;
      if (it.kind === 'label') at.set(it.label, n);
      else n += FORM_SIZE[form.get(i) ?? 'short'];
    });
    const size = (i: number) => FORM_SIZE[form.get(i) ?? 'short'];
    const target = (l: Label | 'next', i: number): number => (l === 'next' ? pos[i]! + size(i) : at.get(l)!);
    let grew = false;
    items.forEach((it, i) => {
      if (it.kind !== 'jump') return;
      const f0 = form.get(i) ?? 'short';
      // offsets as the short form would have them (from the instruction after the jump)
      const farT = f0 === 'both' || f0 === 'farT' || target(it.t, i) - pos[i]! - 1 > 255;
      const farF = f0 === 'both' || f0 === 'farF' || target(it.f, i) - pos[i]! - 1 > 255;
      const f1: JumpForm = farT && farF ? 'both' : farT ? 'farT' : farF ? 'farF' : 'short';
      if (f1 !== f0) {
        form.set(i, f1);
        grew = true;
      }
    });
    if (grew) continue;
    const out: Instruction[] = [];
    items.forEach((it, i) => {
      if (it.kind === 'label') return;
      if (it.kind === 'stmt') {
        out.push({ code: it.code, jt: 0, jf: 0, k: it.k });
        return;
      }
      if (it.kind === 'ja') {
        out.push({ code: BPF.JMP_JA, jt: 0, jf: 0, k: at.get(it.to)! - pos[i]! - 1 });
        return;
      }
      const p = pos[i]!;
      const t = target(it.t, i);
      const f = target(it.f, i);
      const ja = (to: number, at: number) => ({ code: BPF.JMP_JA, jt: 0, jf: 0, k: to - at - 1 });
      switch (form.get(i) ?? 'short') {
        case 'short':
          out.push({ code: it.code, jt: t - p - 1, jf: f - p - 1, k: it.k });
          break;
        case 'farT':
          out.push({ code: it.code, jt: 0, jf: f - p - 1, k: it.k }, ja(t, p + 1));
          break;
        case 'farF':
          out.push({ code: it.code, jt: t - p - 1, jf: 0, k: it.k }, ja(f, p + 1));
          break;
        case 'both':
          out.push({ code: it.code, jt: 0, jf: 1, k: it.k }, ja(t, p + 1), ja(f, p + 2));
          break;
      }
    });
    for (const ins of out) {
      if (ins.jt < 0 || ins.jf < 0 || ins.jt > 255 || ins.jf > 255 || ins.k < 0) throw new Error('seccomp: a jump the layout cannot encode (bug in the BPF layout)');
    }
    return out;
  }
}

const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
const lo = (v: bigint) => Number(v & 0xffffffffn);

/** One condition: control reaches `pass` when it holds, `fail` when not (libseccomp's 64-bit diagrams). */
function emitCond(b: Builder, c: Cond, bits: 32 | 64, pass: Label, fail: Label): void {
  const wide = bits === 64;
  if (c.op === 'MASKED_EQ') {
    const halves: [number, number, number][] = [];
    if (wide && hi(c.mask) !== 0) halves.push([argHi(c.index), hi(c.mask), hi(c.datum)]);
    if (lo(c.mask) !== 0) halves.push([argLo(c.index), lo(c.mask), lo(c.datum)]);
    halves.forEach(([off, mask, datum], i) => {
      b.load(off);
      b.and(mask);
      b.jump(BPF.JMP_JEQ_K, datum, i === halves.length - 1 ? pass : 'next', fail);
    });
    return;
  }
  // LT = not GE, LE = not GT, NE = not EQ: the same test with the exits swapped
  const negated = c.op === 'NE' || c.op === 'LT' || c.op === 'LE';
  const [yes, no] = negated ? [fail, pass] : [pass, fail];
  const op = c.op === 'EQ' || c.op === 'NE' ? 'EQ' : c.op === 'GT' || c.op === 'LE' ? 'GT' : 'GE';
  const code = op === 'EQ' ? BPF.JMP_JEQ_K : op === 'GT' ? BPF.JMP_JGT_K : BPF.JMP_JGE_K;
  if (!wide) {
    b.load(argLo(c.index));
    b.jump(code, lo(c.datum), yes, no);
    return;
  }
  b.load(argHi(c.index));
  if (op === 'EQ') {
    b.jump(BPF.JMP_JEQ_K, hi(c.datum), 'next', no);
  } else {
    // high word greater: decided; equal: the low word decides; less: not
    const eqHi = b.label();
    b.jump(BPF.JMP_JGT_K, hi(c.datum), yes, eqHi);
    b.place(eqHi);
    b.jump(BPF.JMP_JEQ_K, hi(c.datum), 'next', no);
  }
  b.load(argLo(c.index));
  b.jump(code, lo(c.datum), yes, no);
}

function emitChains(b: Builder, chains: Chain[], bits: 32 | 64, fallback: Label): void {
  chains.forEach((chain, i) => {
    const failed = i === chains.length - 1 ? fallback : b.label();
    const done = b.ret(chain.action);
    chain.conds.forEach((c, j) => {
      const pass = j === chain.conds.length - 1 ? done : b.label();
      emitCond(b, c, bits, pass, failed);
      if (pass !== done) b.place(pass);
    });
    if (failed !== fallback) b.place(failed);
  });
}

/** A run of syscall numbers from `start` with one outcome: a return value, or one syscall's argument chains. */
type Interval = { start: number; action: number } | { start: number; chains: Chain[] };

/** The section's number line from `lo`, cut where the outcome changes (neighbours with one action merged). */
function intervals(p: ArchPlan, lo: number, dflt: number): Interval[] {
  const out: Interval[] = [];
  const push = (iv: Interval) => {
    let last = out[out.length - 1];
    // a later outcome from the same number on replaces an empty interval
    if (last && last.start === iv.start) {
      out.pop();
      last = out[out.length - 1];
    }
    if (last && 'action' in last && 'action' in iv && last.action === iv.action) return;
    out.push(iv);
  };
  push({ start: lo, action: dflt });
  const nrs = [...p.rules.keys()].filter((nr) => nr >= lo && (p.enosysAbove === undefined || nr <= p.enosysAbove)).sort((x, y) => x - y);
  for (const nr of nrs) {
    const r = p.rules.get(nr)!;
    push(r.action !== undefined ? { start: nr, action: r.action } : { start: nr, chains: r.chains });
    push({ start: nr + 1, action: dflt });
  }
  if (p.enosysAbove !== undefined) push({ start: p.enosysAbove + 1, action: (RET.ERRNO | ENOSYS) >>> 0 });
  return out;
}

/** Binary search over interval starts; nr is in A on entry. A single-action side is the jump's own target. */
function emitTree(b: Builder, ivs: Interval[], bits: 32 | 64, dfltLabel: Label): void {
  if (ivs.length === 1) {
    const iv = ivs[0]!;
    if ('action' in iv) b.ja(b.ret(iv.action));
    else emitChains(b, iv.chains, bits, dfltLabel);
    return;
  }
  const mid = Math.floor(ivs.length / 2);
  const left = ivs.slice(0, mid);
  const right = ivs.slice(mid);
  const leaf = (side: Interval[]) => (side.length === 1 && 'action' in side[0]! ? b.ret(side[0].action) : undefined);
  const leftRet = leaf(left);
  const rightRet = leaf(right);
  const rightLabel = rightRet ?? b.label();
  b.jump(BPF.JMP_JGE_K, right[0]!.start, rightLabel, leftRet ?? 'next');
  // a subtree never falls through (every path ends in a jump): A still holds nr at the right one
  if (leftRet === undefined) emitTree(b, left, bits, dfltLabel);
  if (rightRet === undefined) {
    b.place(rightLabel);
    emitTree(b, right, bits, dfltLabel);
  }
}

function emitSection(b: Builder, p: ArchPlan, lo: number, dflt: number): void {
  emitTree(b, intervals(p, lo, dflt), p.argBits, b.ret(dflt));
}

/** The whole program; throws SeccompProgramTooLarge beyond BPF_MAXINSNS. */
export function generateBpf(plan: SeccompPlan): Instruction[] {
  const b = new Builder();
  const badArch = b.ret(RET.KILL_THREAD);
  const section = new Map(plan.arches.map((a) => [a.arch, b.label()]));
  b.load(OFF_ARCH);
  b.jump(BPF.JMP_JEQ_K, AUDIT_ARCH.x86_64, section.get('x86_64')!, 'next');
  if (section.has('x86')) b.jump(BPF.JMP_JEQ_K, AUDIT_ARCH.x86, section.get('x86')!, 'next');
  b.ja(badArch);
  for (const p of plan.arches) {
    if (p.arch === 'x32') continue;
    b.place(section.get(p.arch)!);
    b.load(OFF_NR);
    if (p.arch === 'x86_64') b.jump(BPF.JMP_JGE_K, X32_SYSCALL_BIT, section.get('x32') ?? badArch, 'next');
    emitSection(b, p, 0, plan.defaultAction);
  }
  const x32 = plan.arches.find((a) => a.arch === 'x32');
  if (x32) {
    b.place(section.get('x32')!);
    emitSection(b, x32, X32_SYSCALL_BIT, plan.defaultAction);
  }
  const program = b.finish();
  if (program.length > BPF_MAXINSNS) throw new SeccompProgramTooLarge(`linux.seccomp: the profile compiles to ${program.length} BPF instructions, more than the kernel's ${BPF_MAXINSNS}`);
  return program;
}

/** struct sock_filter[] in memory order (little-endian): what seccomp(2) reads. */
export function encodeProgram(program: readonly Instruction[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((ins, i) => {
    buf.writeUInt16LE(ins.code, i * 8);
    buf.writeUInt8(ins.jt, i * 8 + 2);
    buf.writeUInt8(ins.jf, i * 8 + 3);
    buf.writeUInt32LE(ins.k >>> 0, i * 8 + 4);
  });
  return buf;
}
