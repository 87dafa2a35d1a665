#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * `spooky-dataplane --config FILE [--workers N|auto] [--stats-interval-ms MS]`: the data plane; it
 * follows spooky-control over `control.socket`.
 */
import '../lib/node-floor.js';
import { chooseAllocator } from '../lib/allocator.js';

// First, before the data plane loads: this may replace the process with one on jemalloc.
chooseAllocator('spooky-dataplane');
await import('./command.js');
