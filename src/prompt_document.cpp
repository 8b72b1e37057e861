// Atoms, units, budget selection, rendering and settling on the re-tokenized
// output: the machinery shared by every compressor.
#include "prompt_document.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "cinch/core/error.hpp"
#include "cinch/prompt/unicode.hpp"
#include "cinch/prompt/utf8.hpp"
#include "prompt_checks.hpp"

namespace cinch::prompt::detail {
namespace {

bool all_space(std::string_view s) {
  char32_t cp = 0;
  for (std::size_t p = 0; p < s.size();) {
    const auto b = static_cast<unsigned char>(s[p]);
    if (b < 0x80) {
      if (b != ' ' && (b < '\t' || b > '\r')) return false;
      ++p;
      continue;
    }
    const int n = decode_utf8(s, p, cp);
    if (n == 0 || !is_space(cp)) return false;
    p += std::size_t(n);
  }
  return true;
}

// Sorted, disjoint ranges queried at positions that never decrease.
class range_cursor {
 public:
  explicit range_cursor(const std::vector<text_range>& r) : r_(r) {}
  // Whether pos lies in a range (begin <= pos < end).
  bool contains(std::size_t pos) {
    skip(pos);
    return i_ < r_.size() && r_[i_].begin <= pos;
  }
  // Whether pos lies strictly inside a range (begin < pos < end).
  bool inside(std::size_t pos) {
    skip(pos);
    return i_ < r_.size() && r_[i_].begin < pos;
  }
  // Whether [b, e) meets a range.
  bool overlaps(std::size_t b, std::size_t e) {
    skip(b);
    return i_ < r_.size() && r_[i_].begin < e;
  }

 private:
  void skip(std::size_t pos) {
    while (i_ < r_.size() && r_[i_].end <= pos) ++i_;
  }
  const std::vector<text_range>& r_;
  std::size_t i_ = 0;
};

// An order-preserving map from float to unsigned (for radix sorting).
std::uint32_t ordered_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Sorts keys (score bits << 32 | index) ascending. Large inputs: a stable LSD
// radix sort on the 32 score bits in three 11-bit passes (histograms of 2048
// buckets keep the scatter cache-friendly; all three come from one read), so
// equal scores keep the index order they start in; a pass where every key has
// the same digit moves nothing and is skipped. Small inputs: std::sort on the
// whole key.
void sort_keys(std::vector<std::uint64_t>& keys) {
  if (keys.size() < 4096) {
    std::sort(keys.begin(), keys.end());
    return;
  }
  constexpr int bits = 11;
  constexpr std::size_t buckets = std::size_t(1) << bits;
  std::vector<std::uint32_t> count(3 * buckets, 0u);
  for (const std::uint64_t k : keys) {
    ++count[(k >> 32) & (buckets - 1)];
    ++count[buckets + ((k >> (32 + bits)) & (buckets - 1))];
    ++count[2 * buckets + (k >> (32 + 2 * bits))];
  }
  std::vector<std::uint64_t> tmp(keys.size());
  for (int pass = 0; pass < 3; ++pass) {
    std::uint32_t* c = count.data() + std::size_t(pass) * buckets;
    const int shift = 32 + bits * pass;
    if (c[(keys[0] >> shift) & (buckets - 1)] == keys.size()) continue;
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < buckets; ++i) sum += std::exchange(c[i], sum);  // exclusive prefix sums
    for (const std::uint64_t k : keys) tmp[c[(k >> shift) & (buckets - 1)]++] = k;
    keys.swap(tmp);
  }
}

}  // namespace

std::int64_t resolve_target(std::string_view fn, const budget& b, std::int64_t origin) {
  if (b.target_tokens) {
    if (*b.target_tokens <= 0)
      cinch::detail::fail(errc::invalid_argument, fn, "target_tokens must be > 0, got ", *b.target_tokens);
    return std::min(*b.target_tokens, origin);
  }
  if (!(b.rate > 0 && b.rate <= 1))
    cinch::detail::fail(errc::invalid_argument, fn, "rate must be in (0, 1], got ", std::to_string(b.rate));
  return std::min<std::int64_t>(std::llround(b.rate * double(origin)), origin);
}

void check_text(std::string_view fn, std::string_view name, std::string_view text) {
  const std::size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    cinch::detail::fail(errc::invalid_argument, fn, name, " is not valid UTF-8 at byte ", bad);
}

document::document(std::string_view f, std::span<const part_spec> specs, std::span<const std::span<const token>> toks,
                   const structure_options& structure, granularity level, std::string sep)
    : fn(f), separator(std::move(sep)) {
  build(specs, toks, structure, level);
}

document::document(std::string_view f, std::span<const part_spec> specs, const tokenizer& tok,
                   const structure_options& structure, granularity level, std::string sep)
    : fn(f), separator(std::move(sep)) {
  std::vector<std::vector<token>> toks;
  for (const part_spec& s : specs) toks.push_back(checked_encode(fn, tok, s.text));
  build(specs, std::vector<std::span<const token>>(toks.begin(), toks.end()), structure, level);
}

void document::build(std::span<const part_spec> specs, std::span<const std::span<const token>> toks,
                     const structure_options& structure, granularity level) {
  std::vector<std::size_t> begins;
  for (const part_spec& spec : specs) {
    if (!spec.text.empty() && !original.empty()) original += separator;
    begins.push_back(original.size());
    original += spec.text;
  }
  for (const text_range& r : structure.protect)
    if (r.begin > r.end || r.end > original.size())
      cinch::detail::fail(errc::invalid_argument, fn, "protect range [", r.begin, ", ", r.end,
                          ") must lie within the prompt of ", original.size(), " bytes");
  std::size_t total = 0;
  for (const std::span<const token> t : toks) total += t.size();
  tokens.reserve(total);
  atoms.reserve(total + specs.size());
  units.reserve(total + specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const std::string_view text = specs[i].text;
    const std::span<const token> local = toks[i];
    part p{};
    p.forced = specs[i].forced;
    p.begin = begins[i];
    p.end = p.begin + text.size();
    p.tok0 = std::int32_t(tokens.size());
    p.atom0 = std::int32_t(atoms.size());
    p.unit0 = std::int32_t(units.size());
    for (const token& t : local) tokens.push_back({t.id, t.begin + p.begin, t.end + p.begin});
    p.tok1 = std::int32_t(tokens.size());
    if (!text.empty()) {
      structure_plan plan{structure::plain, {}, {}};
      if (p.forced) {
        plan.protect.push_back({0, text.size()});
      } else {
        structure_options local_structure = structure;  // protect ranges are in the original's bytes
        local_structure.protect.clear();
        for (const text_range& r : structure.protect)
          if (r.end > p.begin && r.begin < p.end)
            local_structure.protect.push_back({std::max(r.begin, p.begin) - p.begin, std::min(r.end, p.end) - p.begin});
        plan = analyze_structure(text, local_structure);
      }
      // Units: a new one at each level boundary and wherever forcing changes; each
      // atom joins one as it is cut, while it is still in cache.
      std::vector<std::size_t> starts;
      if (level != granularity::token) starts = unit_starts(text, level);
      std::size_t next = 0;
      bool prev_forced = false;  // the atom before's
      range_cursor at_cut(plan.protect), in_atom(plan.protect), escapes(plan.unbreakable);
      auto close = [&](std::size_t b, std::size_t e, std::int32_t t0, std::int32_t t1) {
        const bool forced = in_atom.overlaps(b, e) || t0 == t1;
        const auto a = std::int32_t(atoms.size());
        bool boundary = a == p.atom0 || level == granularity::token || forced != prev_forced;
        prev_forced = forced;
        while (next < starts.size() && starts[next] <= b) {
          if (a > p.atom0 && starts[next] + p.begin > atoms.back().begin) boundary = true;
          ++next;
        }
        atoms.push_back({b + p.begin, e + p.begin, t0 + p.tok0, t1 + p.tok0});
        if (boundary) units.push_back({a, a + 1, t1 - t0, forced, false, 0.0f});
        else units.back().atom1 = a + 1, units.back().tokens += t1 - t0;
      };
      // Cuts before token t (and at the end, t = n; text without tokens is one atom).
      const std::size_t n = local.size();
      std::size_t start = 0;
      std::int32_t t0 = 0;
      bool space_only = n > 0 && all_space(text.substr(0, n > 1 ? local[1].begin : text.size()));
      for (std::size_t t = std::min<std::size_t>(n, 1);; ++t) {
        const bool end = t >= n;
        const std::size_t at = end ? text.size() : local[t].begin;
        if (end || (at > start && is_char_boundary(text, at) && !escapes.inside(at) &&
                    (at_cut.contains(at - 1) != at_cut.contains(at) || !space_only))) {
          close(start, at, t0, std::int32_t(std::min(t, n)));  // the only call: inlined in this loop
          if (end) break;
          start = at, t0 = std::int32_t(t), space_only = true;
        }
        const std::size_t own_end = t + 1 < n ? local[t + 1].begin : text.size();
        const auto first = static_cast<unsigned char>(text[at]);  // most tokens start with a letter or ' ' + letter
        space_only = space_only && (first >= 0x80 || first == ' ' || (first >= '\t' && first <= '\r')) &&
                     all_space(text.substr(at, own_end - at));
      }
    }
    p.atom1 = std::int32_t(atoms.size());
    p.unit1 = std::int32_t(units.size());
    order.push_back(std::int32_t(parts.size()));
    parts.push_back(p);
  }
  scores.assign(tokens.size(), 0.0f);
  reset_keep();
}

void document::score_units(aggregation how, std::int32_t u0, std::int32_t u1) {
  if (u1 < 0) u1 = std::int32_t(units.size());
  for (std::int32_t i = u0; i < u1; ++i) {
    unit& u = units[std::size_t(i)];
    const std::int32_t t0 = atoms[std::size_t(u.atom0)].tok0, t1 = atoms[std::size_t(u.atom1 - 1)].tok1;
    if (t0 == t1) {
      u.score = 0;
      continue;
    }
    double acc = how == aggregation::max ? -std::numeric_limits<double>::infinity() : 0.0;
    for (std::int32_t t = t0; t < t1; ++t) {
      const double s = scores[std::size_t(t)];
      acc = how == aggregation::max ? std::max(acc, s) : acc + s;
    }
    u.score = how == aggregation::first ? scores[std::size_t(t0)]
              : how == aggregation::max ? float(acc)
                                        : float(acc / double(t1 - t0));
  }
}

void document::force_digit_units() {
  for (unit& u : units) {
    const std::size_t b = atoms[std::size_t(u.atom0)].begin, e = atoms[std::size_t(u.atom1 - 1)].end;
    for (std::size_t q = b; q < e && !u.forced; ++q) u.forced = original[q] >= '0' && original[q] <= '9';
  }
  reset_keep();
}

void document::reset_keep() {
  keep.assign(units.size(), 0);
  for (const part& p : parts)
    if (!p.dropped)
      for (std::int32_t u = p.unit0; u < p.unit1; ++u)
        if (units[std::size_t(u)].forced) keep[std::size_t(u)] = units[std::size_t(u)].tokens;
}

std::int64_t document::kept_tokens() const {
  std::int64_t n = 0;
  for (const std::int32_t k : keep) n += k;
  return n;
}

std::vector<std::int32_t> document::ranked(std::int32_t u0, std::int32_t u1) const {
  // Keys (inverted ordered score, index): ascending order is score descending, index ascending.
  std::vector<std::uint64_t> keys;
  keys.reserve(std::size_t(u1 - u0));
  for (const part& p : parts) {
    if (p.dropped) continue;
    for (std::int32_t u = std::max(p.unit0, u0); u < std::min(p.unit1, u1); ++u)
      if (!units[std::size_t(u)].forced && !units[std::size_t(u)].dropped)
        keys.push_back(std::uint64_t(~ordered_bits(units[std::size_t(u)].score)) << 32 | std::uint32_t(u));
  }
  sort_keys(keys);
  std::vector<std::int32_t> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) out[i] = std::int32_t(keys[i] & 0xFFFFFFFFu);
  return out;
}

std::int32_t document::prefix_tokens(std::int32_t u, std::int64_t limit) const {
  std::int32_t acc = 0;
  for (std::int32_t a = units[std::size_t(u)].atom0; a < units[std::size_t(u)].atom1; ++a) {
    const std::int32_t n = atom_tokens(atoms[std::size_t(a)]);
    if (acc + n > limit) break;
    acc += n;
  }
  return acc;
}

std::int64_t document::add(std::span<const std::int32_t> best_first, std::int64_t amount, bool partial) {
  std::int64_t rem = amount;
  for (const std::int32_t u : best_first) {
    if (rem <= 0) break;
    const std::int32_t free = units[std::size_t(u)].tokens - keep[std::size_t(u)];
    if (free > 0 && free <= rem) keep[std::size_t(u)] += free, rem -= free;
  }
  for (std::size_t i = 0; partial && rem > 0 && i < best_first.size(); ++i) {
    const std::int32_t u = best_first[i];
    const std::int32_t k = prefix_tokens(u, keep[std::size_t(u)] + rem);
    if (k > keep[std::size_t(u)]) rem -= k - keep[std::size_t(u)], keep[std::size_t(u)] = k;
  }
  return amount - rem;
}

std::int64_t document::remove(std::span<const std::int32_t> best_first, std::int64_t amount, bool partial) {
  std::int64_t rem = amount;
  for (auto it = best_first.rbegin(); it != best_first.rend() && rem > 0; ++it) {
    const std::int32_t k = keep[std::size_t(*it)];
    if (k > 0 && k <= rem) keep[std::size_t(*it)] = 0, rem -= k;
  }
  for (auto it = best_first.rbegin(); partial && it != best_first.rend() && rem > 0; ++it) {
    const std::int32_t k = keep[std::size_t(*it)];
    if (k == 0) continue;
    const std::int32_t shorter = prefix_tokens(*it, k - rem);
    rem -= k - shorter;
    keep[std::size_t(*it)] = shorter;
  }
  return amount - rem;
}

void document::drop_part(std::size_t p) {
  parts[p].dropped = true;
  for (std::int32_t u = parts[p].unit0; u < parts[p].unit1; ++u) keep[std::size_t(u)] = 0;
}

void document::drop_repeats(std::span<const std::string> strings) {
  std::string_view last;  // the text of the last kept unit when it is one of strings, else empty
  for (const part& p : parts) {
    if (p.dropped) continue;
    for (std::int32_t u = p.unit0; u < p.unit1; ++u) {
      unit& x = units[std::size_t(u)];
      if (keep[std::size_t(u)] == 0 || x.dropped) continue;
      // The unit's text as it is ("\n"), else less its ASCII whitespace (" ?").
      std::string_view t = std::string_view(original).substr(
          atoms[std::size_t(x.atom0)].begin, atoms[std::size_t(x.atom1 - 1)].end - atoms[std::size_t(x.atom0)].begin);
      auto listed = [&](std::string_view v) { return std::find(strings.begin(), strings.end(), v) != strings.end(); };
      if (!listed(t)) {
        constexpr std::string_view space = " \t\n\r\f\v";
        const std::size_t b = t.find_first_not_of(space);
        t = b == std::string_view::npos ? std::string_view() : t.substr(b, t.find_last_not_of(space) + 1 - b);
      }
      const bool is_string = x.forced && !t.empty() && listed(t);
      if (is_string && t == last) {
        x.dropped = true;
        keep[std::size_t(u)] = 0;
      } else {
        last = is_string ? t : std::string_view();
      }
    }
  }
}

std::string document::render(std::vector<kept_span>* spans) const {
  std::string out;
  out.reserve(original.size());
  std::size_t run_begin = 0, run_end = 0;  // kept bytes not yet copied
  auto flush = [&] {
    if (run_begin == run_end) return;
    if (spans) spans->push_back({run_begin, run_end, out.size()});
    out.append(original, run_begin, run_end - run_begin);
    run_begin = run_end;
  };
  for (const std::int32_t pi : order) {
    const part& p = parts[std::size_t(pi)];
    if (p.dropped) continue;
    bool first = true;
    for_each_kept_atom(p.unit0, p.unit1, [&](const atom& at) {
      if (first) {
        flush();
        if (!out.empty()) out += separator;
        run_begin = run_end = at.begin;
        first = false;
      } else if (at.begin != run_end) {
        flush();
        run_begin = run_end = at.begin;
      }
      run_end = at.end;
    });
    flush();
  }
  return out;
}

std::int64_t document::settle(const tokenizer& tok, std::int64_t target, bool partial) {
  const std::vector<std::int32_t> best_first = ranked();
  std::vector<std::int32_t> best_keep = keep;
  std::int64_t best_count = -1;
  for (int iter = 0; iter < 8; ++iter) {
    const std::int64_t count = tok.count(render());
    // Closest to the target; on a tie, the one under it.
    const auto off = [&](std::int64_t c) { return std::pair(c > target ? c - target : target - c, c > target); };
    if (best_count < 0 || off(count) < off(best_count)) best_keep = keep, best_count = count;
    if (count == target) break;
    const std::int64_t moved =
        count > target ? remove(best_first, count - target, partial) : add(best_first, target - count, partial);
    if (moved == 0) break;
  }
  keep = std::move(best_keep);
  return best_count;
}

void document::kept_tokens_of(std::int32_t u0, std::int32_t u1, std::vector<std::int32_t>& out) const {
  for_each_kept_atom(u0, u1, [&](const atom& at) {
    for (std::int32_t t = at.tok0; t < at.tok1; ++t) out.push_back(t);
  });
}

result document::finish(std::int64_t origin_tokens, std::int64_t target, std::int64_t compressed) const {
  result r;
  r.text = render(&r.spans);
  r.origin_tokens = origin_tokens;
  r.compressed_tokens = compressed;
  r.target_tokens = target;
  r.rate = origin_tokens ? double(compressed) / double(origin_tokens) : 1.0;
  r.ratio = compressed ? double(origin_tokens) / double(compressed)
                       : (origin_tokens ? std::numeric_limits<double>::infinity() : 1.0);
  r.tokens.reserve(tokens.size());
  for (std::size_t t = 0; t < tokens.size(); ++t)
    r.tokens.push_back({tokens[t].id, tokens[t].begin, tokens[t].end, scores[t], false, false});
  for (const part& p : parts) {
    for (std::int32_t u = p.unit0; u < p.unit1; ++u)
      if (units[std::size_t(u)].forced)
        for (std::int32_t t = token_range(u).first; t < token_range(u).second; ++t) r.tokens[std::size_t(t)].forced = true;
    if (!p.dropped)
      for_each_kept_atom(p.unit0, p.unit1, [&](const atom& at) {
        for (std::int32_t t = at.tok0; t < at.tok1; ++t) r.tokens[std::size_t(t)].kept = true;
      });
  }
  return r;
}

}  // namespace cinch::prompt::detail
