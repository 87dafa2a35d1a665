/**
 * Imported first by the daemons' entry points: ES modules evaluate their imports in order, so
 * this check runs before any other module of the daemon does.
 */
import { exitUnlessSupportedNode } from './node-runtime.js';

exitUnlessSupportedNode('spooky');
