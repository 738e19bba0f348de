// Learning-rate schedules as transformers builds them: linear warmup from 0, then linear (or cosine, or
// constant) decay to 0 at the last step. `step` counts optimizer steps from 0, so step 0 runs at lr 0
// when there is warmup, exactly as the Trainer does.

export type ScheduleKind = 'linear' | 'cosine' | 'constant';

export interface Schedule {
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  kind: ScheduleKind;
}

export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.baseLr * step) / Math.max(1, s.warmupSteps);
  if (s.kind === 'constant') return s.baseLr;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  if (s.kind === 'cosine') return s.baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  return s.baseLr * Math.max(0, (s.totalSteps - step) / Math.max(1, s.totalSteps - s.warmupSteps));
}
