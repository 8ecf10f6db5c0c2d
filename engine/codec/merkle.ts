/**
 * Binary BLAKE3 Merkle trees over 32-byte leaves: node = blake3(left || right), an odd node is
 * promoted unchanged, the empty tree's root is blake3(""). Used for prune summaries and
 * State-Root; `merkleProof` lets one leaf be proven against the root.
 */
import { blake3Bytes } from './blake3.js';

export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return blake3Bytes(new Uint8Array(0));
  let level = leaves;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as Uint8Array;
      const right = level[i + 1];
      next.push(right ? blake3Bytes(Buffer.concat([left, right])) : left);
    }
    level = next;
  }
  return level[0] as Uint8Array;
}

/** One step of a proof: the sibling's hash and which side it sits on. */
export interface ProofStep {
  side: 'left' | 'right';
  hash: string;
}

/** The siblings from leaf `index` up to the root (promoted levels add no step). */
export function merkleProof(leaves: readonly Uint8Array[], index: number): ProofStep[] {
  const steps: ProofStep[] = [];
  let level = leaves;
  let at = index;
  while (level.length > 1) {
    const sibling = at % 2 === 0 ? at + 1 : at - 1;
    if (sibling < level.length) {
      steps.push({ side: at % 2 === 0 ? 'right' : 'left', hash: Buffer.from(level[sibling] as Uint8Array).toString('hex') });
    }
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const right = level[i + 1];
      next.push(right ? blake3Bytes(Buffer.concat([level[i] as Uint8Array, right])) : (level[i] as Uint8Array));
    }
    level = next;
    at = Math.floor(at / 2);
  }
  return steps;
}

/** Recomputes the root from a leaf and its proof. */
export function rootFromProof(leaf: Uint8Array, steps: readonly ProofStep[]): Uint8Array {
  let hash = leaf;
  for (const step of steps) {
    const sibling = Buffer.from(step.hash, 'hex');
    hash = blake3Bytes(step.side === 'right' ? Buffer.concat([hash, sibling]) : Buffer.concat([sibling, hash]));
  }
  return hash;
}
