/**
 * A classic-BPF interpreter for seccomp programs, as the kernel's checker and interpreter treat them: the tests run
 * the compiled program on seccomp_data and compare its answer with the plan's (src/runcvm/seccomp/plan.ts decide).
 * It refuses what the kernel refuses (a jump out of the program, falling off the end, an unknown opcode).
 */
import { BPF, type Instruction } from '../../../../src/runcvm/seccomp/bpf.js';
import type { SeccompData } from '../../../../src/runcvm/seccomp/plan.js';

/** the 64-byte struct seccomp_data, little-endian */
export function seccompData(d: SeccompData): Buffer {
  const buf = Buffer.alloc(64);
  buf.writeUInt32LE(d.nr >>> 0, 0);
  buf.writeUInt32LE(d.arch >>> 0, 4);
  for (let i = 0; i < 6; i++) buf.writeBigUInt64LE((d.args[i] ?? 0n) & 0xffffffffffffffffn, 16 + 8 * i);
  return buf;
}

export function runBpf(program: readonly Instruction[], d: SeccompData): number {
  const data = seccompData(d);
  let a = 0;
  let pc = 0;
  for (let steps = 0; steps <= program.length; steps++) {
    const ins = program[pc];
    if (!ins) throw new Error(`BPF: pc ${pc} is outside the program (${program.length} instructions)`);
    switch (ins.code) {
      case BPF.LD_W_ABS:
        if (ins.k % 4 !== 0 || ins.k + 4 > 64) throw new Error(`BPF: load at ${ins.k}`);
        a = data.readUInt32LE(ins.k);
        pc++;
        break;
      case BPF.ALU_AND_K:
        a = (a & ins.k) >>> 0;
        pc++;
        break;
      case BPF.JMP_JA:
        pc += 1 + ins.k;
        break;
      case BPF.JMP_JEQ_K:
        pc += 1 + (a === ins.k >>> 0 ? ins.jt : ins.jf);
        break;
      case BPF.JMP_JGT_K:
        pc += 1 + (a > ins.k >>> 0 ? ins.jt : ins.jf);
        break;
      case BPF.JMP_JGE_K:
        pc += 1 + (a >= ins.k >>> 0 ? ins.jt : ins.jf);
        break;
      case BPF.RET_K:
        return ins.k >>> 0;
      default:
        throw new Error(`BPF: opcode 0x${ins.code.toString(16)}`);
    }
  }
  throw new Error('BPF: no return (a loop or a fall off the end)');
}
