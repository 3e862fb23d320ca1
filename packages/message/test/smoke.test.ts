import { describe, expect, it } from 'vitest';
describe('smoke', () => { it('works', () => { expect(1 + 1).toBe(2); }); });
