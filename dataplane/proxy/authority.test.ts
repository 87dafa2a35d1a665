import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validAuthority, validScheme } from './authority.js';

describe('validAuthority (RFC 3986 §3.2 without userinfo)', () => {
  it('accepts host names, IPv4, bracketed IPv6, with or without a port', () => {
    for (const a of [
      'example.com',
      'example.com:443',
      'EXAMPLE.com.',
      '127.0.0.1',
      '127.0.0.1:0',
      '[::1]',
      '[::1]:65535',
      '[2001:db8::1]:8443',
      'a_b-c~d',
      'caf%C3%A9.example',
    ]) {
      assert.equal(validAuthority(a), true, a);
    }
  });
  it('refuses spaces, controls, userinfo, bad ports and bad IPv6 literals', () => {
    for (const a of [
      '',
      'a b',
      'a b/c',
      'a\tb',
      'a\x7fb',
      'example.com/',
      'example.com?',
      'example.com#x',
      'user@example.com',
      'user:pw@example.com',
      ':443',
      'example.com:',
      'example.com:65536',
      'example.com:-1',
      'example.com:44a',
      'example.com:1:2',
      '::1',
      '[::1',
      '[::1]x',
      '[::1]:',
      '[fe80::1%25eth0]',
      '[v1.x]',
      '[example.com]',
      'a%zz',
      'a%4',
      'café.example',
      'a"b',
      'a\\b',
    ]) {
      assert.equal(validAuthority(a), false, JSON.stringify(a));
    }
  });
});

describe('validScheme', () => {
  it('is https or http only', () => {
    assert.equal(validScheme('https'), true);
    assert.equal(validScheme('http'), true);
    for (const s of ['', 'HTTPS', 'ftp', 'https ', 'ws']) assert.equal(validScheme(s), false, s);
  });
});
