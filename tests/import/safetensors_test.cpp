// The safetensors reader: round trips, and one test per malformed file, each refused with one
// line that names the file and the reason.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "src/import/safetensors.hpp"
#include "tests/import/import_test_util.hpp"

namespace dsa::import {
namespace {

using test::error_of;
using test::TempDir;

// A file: the 8-byte little-endian length of `header`, `header`, then `data` bytes.
std::string raw(const std::string& header, std::size_t data_bytes = 0, uint64_t length = UINT64_MAX) {
  const uint64_t n = length == UINT64_MAX ? header.size() : length;
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out += header;
  out.append(data_bytes, '\x01');
  return out;
}

// The one-line reason parse() gives for `bytes`; it must name the file.
std::string reason(const std::string& bytes) {
  const std::string msg = error_of([&] { (void)SafetensorsFile::parse("bad.safetensors", bytes); });
  EXPECT_CONTAINS(msg, "bad.safetensors: ");
  return msg;
}

TEST(Safetensors, RoundTripOfEveryDtypeAndMetadata) {
  const std::vector<int32_t> ints = {1, -2, 3, 2147483647, -2147483647 - 1, 0};
  const std::vector<float> floats = {0.5f, -1.25f};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xBF80, 0x0000};
  const std::vector<uint8_t> fp8 = {0x38, 0xB8, 0x7E, 0x00};
  const std::vector<int64_t> longs = {-1, 1ll << 40};
  const std::string bytes = serialize_safetensors(
      {make_st_tensor("ints", StDtype::I32, {2, 3}, ints), make_st_tensor("floats", StDtype::F32, {2}, floats),
       make_st_tensor("bf16", StDtype::BF16, {3}, bf16), make_st_tensor("fp8", StDtype::F8_E4M3, {2, 2}, fp8),
       make_st_tensor("longs", StDtype::I64, {2}, longs),
       make_st_tensor("empty", StDtype::I32, {0, 5}, std::vector<int32_t>{}),
       make_st_tensor("scalar", StDtype::F64, {}, std::vector<double>{2.5})},
      {{"format", "pt"}, {"source", "test"}});
  ASSERT_EQ((bytes.size() - 66) % 8, 0u) << "8 + header, padded to a multiple of 8, then 66 data bytes";
  const SafetensorsFile f = SafetensorsFile::parse("t.safetensors", bytes);
  ASSERT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(f.tensors()[0].name, "ints");  // header order kept
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.read<int32_t>("ints"), ints);
  EXPECT_EQ(f.read<float>("floats"), floats);
  EXPECT_EQ(f.read<uint16_t>("bf16"), bf16);
  EXPECT_EQ(f.read<uint8_t>("fp8"), fp8);
  EXPECT_EQ(f.read<int64_t>("longs"), longs);
  EXPECT_TRUE(f.read<int32_t>("empty").empty());
  EXPECT_EQ(f.read<double>("scalar"), std::vector<double>{2.5});
  EXPECT_EQ(f.require("ints").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.require("scalar").elements(), 1);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_CONTAINS(error_of([&] { (void)f.read<int32_t>("nope"); }), "no tensor 'nope'");
  EXPECT_CONTAINS(error_of([&] { (void)f.read<int32_t>("bf16"); }), "is BF16, not 4 bytes per element");
}

TEST(Safetensors, OpenReadsFromTheFileAndMatchesParse) {
  TempDir dir;
  const std::vector<int32_t> values = {7, 8, 9, 10};
  write_safetensors(dir.file("a.safetensors"),
                    {make_st_tensor("x", StDtype::I32, {4}, values),
                     make_st_tensor("y", StDtype::U8, {3}, std::vector<uint8_t>{1, 2, 3})});
  const SafetensorsFile f = SafetensorsFile::open(dir.file("a.safetensors"));
  EXPECT_EQ(f.read<int32_t>("x"), values);
  EXPECT_EQ(f.read<uint8_t>("y"), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_CONTAINS(error_of([&] { (void)SafetensorsFile::open(dir.file("none.safetensors")); }), "none.safetensors: no such file");
  EXPECT_CONTAINS(error_of([&] { (void)SafetensorsFile::open(dir.path()); }), "not a regular file");
}

// As the reference writer makes it: tensors sorted by dtype and name, offsets out of header
// order, padding spaces; both are fine.
TEST(Safetensors, AcceptsOffsetsInAnyHeaderOrderAndNoPadding) {
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
  const SafetensorsFile f = SafetensorsFile::parse("x", raw(header, 6));
  EXPECT_EQ(f.tensors()[0].name, "b");
  EXPECT_EQ(f.require("a").begin, 0u);
  EXPECT_NO_THROW((void)SafetensorsFile::parse("x", raw(R"({}   )")));
  EXPECT_NO_THROW((void)SafetensorsFile::parse("x", raw(R"({"__metadata__":{}})")));
}

// ---- Malformed files: one test per reason. ----------------------------------------------------

TEST(SafetensorsMalformed, ShorterThanTheLength) {
  EXPECT_CONTAINS(reason(std::string("\x02\x00\x00", 3)), "3 bytes, too short for the 8-byte header length");
  EXPECT_CONTAINS(reason(""), "0 bytes");
}

TEST(SafetensorsMalformed, HeaderLengthBeyondTheLimit) {
  EXPECT_CONTAINS(reason(raw("{}", 0, 100'000'001)), "header length 100000001 exceeds the safetensors limit");
  EXPECT_CONTAINS(reason(raw("{}", 0, UINT64_MAX - 1)), "exceeds the safetensors limit");
}

TEST(SafetensorsMalformed, HeaderLengthPastTheEnd) {
  EXPECT_CONTAINS(reason(raw("{}", 0, 40)), "header length 40 runs past the end of the file (2 bytes follow");
}

TEST(SafetensorsMalformed, HeaderLengthTooSmallForAnObject) {
  EXPECT_CONTAINS(reason(raw("", 0, 0)), "header length 0 is too small for a JSON object");
  EXPECT_CONTAINS(reason(raw("{", 0, 1)), "header length 1 is too small");
}

TEST(SafetensorsMalformed, HeaderNotStartingWithABrace) {
  EXPECT_CONTAINS(reason(raw(" {}")), "does not start with '{'");
  EXPECT_CONTAINS(reason(raw("[1]")), "does not start with '{'");
}

TEST(SafetensorsMalformed, HeaderNotJson) {
  EXPECT_CONTAINS(reason(raw(R"({"a":)")), "the header is not valid JSON");
  EXPECT_CONTAINS(reason(raw(R"({"a":1}xyz)")), "not valid JSON");         // trailing bytes
  EXPECT_CONTAINS(reason(raw(std::string("{}\0\0", 4))), "not valid JSON");  // NUL padding
  EXPECT_CONTAINS(reason(raw("{\"\xff\":1}")), "not valid JSON");              // not UTF-8
}

TEST(SafetensorsMalformed, RepeatedKey) {
  const std::string t = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  EXPECT_CONTAINS(reason(raw("{\"x\":" + t + ",\"x\":" + t + "}", 1)), "key 'x' appears twice");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1)), "key 'dtype' appears twice");
}

TEST(SafetensorsMalformed, MetadataNotStrings) {
  EXPECT_CONTAINS(reason(raw(R"({"__metadata__":[1]})")), "__metadata__ is an array, expected an object of strings");
  EXPECT_CONTAINS(reason(raw(R"({"__metadata__":{"a":1}})")), "__metadata__ key 'a' holds a number");
}

TEST(SafetensorsMalformed, TensorEntryNotAnObject) {
  EXPECT_CONTAINS(reason(raw(R"({"x":[0,1]})")), "tensor 'x' is an array, expected an object");
}

TEST(SafetensorsMalformed, TensorEntryMissingAKey) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"shape":[1],"data_offsets":[0,1]}})", 1)), "tensor 'x': missing 'dtype'");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","data_offsets":[0,1]}})", 1)), "missing 'shape'");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[1]}})", 1)), "missing 'data_offsets'");
}

TEST(SafetensorsMalformed, TensorEntryWithAnUnexpectedKey) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"offsets":[0,1]}})", 1)), "unexpected key 'offsets'");
}

TEST(SafetensorsMalformed, UnknownDtype) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"F128","shape":[1],"data_offsets":[0,1]}})", 1)), "unknown dtype 'F128' (known: BOOL, U8");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"i32","shape":[1],"data_offsets":[0,4]}})", 4)), "unknown dtype 'i32'");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4)), "dtype is a number");
}

TEST(SafetensorsMalformed, ShapeNotNonNegativeIntegers) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":3,"data_offsets":[0,3]}})", 3)), "shape is a number");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})")), "shape [-1] holds -1, expected non-negative integers");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}})", 2)), "holds 2.0");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}})", 2)), "holds \"2\"");
}

TEST(SafetensorsMalformed, ShapeOverflows) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8)), "overflows");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,8]}})", 8)), "overflows");
}

TEST(SafetensorsMalformed, DataOffsetsNotABeginEndPair) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", 1)), "data_offsets [0,1,2], expected [begin, end]");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1)), "expected [begin, end]");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":"0-1"}})", 1)), "expected [begin, end]");
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", 1)), "end before they begin");
}

TEST(SafetensorsMalformed, SizeNotShapeTimesDtype) {
  EXPECT_CONTAINS(reason(raw(R"({"x":{"dtype":"I32","shape":[2,3],"data_offsets":[0,12]}})", 12)), "data_offsets [0,12] span 12 bytes, but shape [2, 3] of I32 needs 24");
}

TEST(SafetensorsMalformed, GapBetweenTensors) {
  EXPECT_CONTAINS(reason(raw(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})", 5)), "tensor 'b' starts at byte 3 of the data, expected 2");
}

TEST(SafetensorsMalformed, OverlappingTensors) {
  EXPECT_CONTAINS(reason(raw(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4)), "tensor 'b' starts at byte 2 of the data, expected 4");
}

TEST(SafetensorsMalformed, FirstTensorNotAtZero) {
  EXPECT_CONTAINS(reason(raw(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4)), "tensor 'a' starts at byte 2 of the data, expected 0");
}

TEST(SafetensorsMalformed, TensorRunsPastTheEnd) {
  EXPECT_CONTAINS(reason(raw(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 5)), "the tensors end at byte 8 of the data, but the file holds 5 data bytes");
}

TEST(SafetensorsMalformed, BytesAfterTheLastTensor) {
  EXPECT_CONTAINS(reason(raw(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 3)), "end at byte 2 of the data, but the file holds 3");
  EXPECT_CONTAINS(reason(raw("{}", 1)), "end at byte 0 of the data, but the file holds 1");
}

TEST(SafetensorsMalformed, HeaderIsNotAnObject) {
  // Starts with '{' but is not one object: refused as JSON (the parser sees trailing bytes).
  EXPECT_CONTAINS(reason(raw("{} {}")), "not valid JSON");
}

TEST(SafetensorsMalformed, SameReasonsFromAFile) {
  TempDir dir;
  const std::string path = dir.file("cut.safetensors");
  std::string bytes = serialize_safetensors({make_st_tensor("x", StDtype::I32, {4}, std::vector<int32_t>{1, 2, 3, 4})});
  bytes.resize(bytes.size() - 4);  // a truncated download
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_CONTAINS(error_of([&] { (void)SafetensorsFile::open(path); }), "cut.safetensors: the tensors end at byte 16 of the data, but the file holds 12");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string("abc");
  EXPECT_CONTAINS(error_of([&] { (void)SafetensorsFile::open(path); }), "3 bytes, too short");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << raw("{}", 0, 1000);
  EXPECT_CONTAINS(error_of([&] { (void)SafetensorsFile::open(path); }), "header length 1000 runs past the end");
}

TEST(SafetensorsWriter, RefusesDataOfTheWrongSize) {
  EXPECT_CONTAINS(error_of([] { (void)serialize_safetensors({make_st_tensor("x", StDtype::I32, {3}, std::vector<int32_t>{1})}); }), "tensor 'x' has 4 bytes, its shape [3] of I32 needs 12");
}

}  // namespace
}  // namespace dsa::import
