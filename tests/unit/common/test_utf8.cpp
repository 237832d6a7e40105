// Strings at the boundary (docs/DESIGN.md 4): strict UTF-8, safe log text,
// valid JSON whatever a string holds, and validation of every string field.
#include <gtest/gtest.h>

#include <cstring>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/utf8.h"

using namespace kairos;

TEST(Utf8, AcceptsWellFormedTextAndRefusesEveryIllFormedKind) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xC3\x98stfold \xE2\x82\xAC \xF0\x9F\x98\x80"));  // Ø, €, an emoji
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));                               // U+10FFFF
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_FALSE(valid_utf8("\x80"));              // a stray continuation byte
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));      // overlong, 3 bytes
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("ok\xE2\x82"));        // truncated
}

TEST(Utf8, ACutNeverSplitsASequence) {
  std::string s = "ab\xE2\x82\xAC";  // ab€
  EXPECT_EQ(utf8_cut(s, 5), 5u);
  EXPECT_EQ(utf8_cut(s, 4), 2u);
  EXPECT_EQ(utf8_cut(s, 3), 2u);
  EXPECT_EQ(utf8_cut(s, 2), 2u);
  char small[4];
  set_string(small, s);  // room for 3 bytes: "ab" and not half a euro
  EXPECT_STREQ(small, "ab");
  EXPECT_TRUE(valid_utf8(small));
}

TEST(Utf8, LogTextIsEscapedAndBounded) {
  EXPECT_EQ(log_safe("a\nb\\c\xFF"), "a\\x0ab\\\\c\\xff");
  EXPECT_EQ(log_safe("\xC3\x98"), "\xC3\x98");
  std::string huge(65'000, 'x');
  auto line = log_safe(huge, 96);
  EXPECT_LT(line.size(), 140u);
  EXPECT_NE(line.find("64904 more bytes"), std::string::npos) << line;
}

TEST(Utf8, JsonIsValidWhateverTheStringHolds) {
  Json j;
  j.begin_object().key("s").str("q\"b\\n\n\x01\x7f\xFF\xC3\x98").end_object();
  EXPECT_EQ(j.text(), "{\"s\":\"q\\\"b\\\\n\\n\\u0001\\u007f\\ufffd\xC3\x98\"}");
}

TEST(Utf8, EveryStringFieldOfAnEnvelopeIsChecked) {
  auto env = make_envelope("n1", 1, 1, 0);
  env->which_message = kairos_v1_Envelope_birth_tag;
  set_string(env->message.birth.cluster, "c1");
  env->message.birth.device_class = kairos_v1_DeviceClass_CLASS_A;
  env->message.birth.heartbeat_period_ms = 1000;
  EXPECT_FALSE(validate(*env));
  // a capability (a repeated string inside the oneof's message)
  env->message.birth.capabilities_count = 2;
  set_string(env->message.birth.capabilities[0], "gpio");
  std::strcpy(env->message.birth.capabilities[1], "bad\xFF");
  auto why = validate(*env);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("not UTF-8"), std::string::npos) << *why;
  set_string(env->message.birth.capabilities[1], "\xE2\x82\xAC");
  EXPECT_FALSE(validate(*env));
  // the board, firmware, and an event's text
  std::strcpy(env->message.birth.board, "\xC0\xAF");
  EXPECT_TRUE(validate(*env));
  env->message.birth.board[0] = '\0';
  auto ev = make_envelope("n1", 1, 2, 0);
  ev->which_message = kairos_v1_Envelope_event_tag;
  std::strcpy(ev->message.event.detail, "\xED\xA0\x80");
  auto e = validate(*ev);
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("not UTF-8"), std::string::npos) << *e;
}
