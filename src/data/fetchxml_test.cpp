#include "tributary/data/fetchxml.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/strings.h"

namespace tributary::data {
namespace {

// A compact, unambiguous rendering of a parsed query for table-driven expectations:
//   entity=account top=5 count=3 page=2 cookie=… distinct aggregate totalcount nolock
//   all attrs=[name,revenue@Rev:sum,createdon@Month:groupby/month] orders=[name,-createdon,@Rev]
//   filter=and(name eq 'x', c.age in '1'|'2', a eq valueof:b, or(...), contact(contactid=parentid):any{...})
//   links=[contact(contactid=primarycontactid)@pc:outer:visible:intersect{attrs=[...] ...}]
std::string Show(const FetchFilter& f);
std::string Show(const FetchLink& l);

std::string Show(const FetchCondition& c) {
  std::string s = (c.entityname.empty() ? "" : c.entityname + ".") + c.attribute + " " + c.op;
  for (size_t i = 0; i < c.values.size(); ++i) s += (i ? "|'" : " '") + c.values[i] + "'";
  if (!c.valueof.empty()) s += " valueof:" + c.valueof;
  return s;
}

template <typename Node>
std::string ShowBody(const Node& n) {
  std::string s;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += ' ';
    s += part;
  };
  if (n.all_attributes) add("all");
  if (!n.attributes.empty()) {
    std::string a = "attrs=[";
    for (size_t i = 0; i < n.attributes.size(); ++i) {
      const FetchAttribute& x = n.attributes[i];
      if (i) a += ',';
      a += x.name;
      if (!x.alias.empty()) a += "@" + x.alias;
      if (!x.aggregate.empty()) a += ":" + x.aggregate;
      if (x.groupby) a += ":groupby";
      if (!x.dategrouping.empty()) a += "/" + x.dategrouping;
      if (x.distinct) a += ":distinct";
    }
    add(a + "]");
  }
  if (!n.orders.empty()) {
    std::string o = "orders=[";
    for (size_t i = 0; i < n.orders.size(); ++i) {
      if (i) o += ',';
      if (n.orders[i].descending) o += '-';
      o += n.orders[i].alias.empty() ? n.orders[i].attribute : "@" + n.orders[i].alias;
    }
    add(o + "]");
  }
  if (n.filter) add("filter=" + Show(*n.filter));
  if (!n.links.empty()) {
    std::string l = "links=[";
    for (size_t i = 0; i < n.links.size(); ++i) {
      if (i) l += ',';
      l += Show(n.links[i]);
    }
    add(l + "]");
  }
  return s;
}

std::string Show(const FetchLink& l) {
  std::string s = l.name + "(" + l.from + "=" + l.to + ")";
  if (!l.alias.empty()) s += "@" + l.alias;
  s += ":" + l.link_type;
  if (l.visible) s += ":visible";
  if (l.intersect) s += ":intersect";
  return s + "{" + ShowBody(l) + "}";
}

std::string Show(const FetchFilter& f) {
  std::string s = f.is_or ? "or(" : "and(";
  std::vector<std::string> parts;
  for (const FetchCondition& c : f.conditions) parts.push_back(Show(c));
  for (const FetchFilter& c : f.filters) parts.push_back(Show(c));
  for (const FetchLink& c : f.links) parts.push_back(Show(c));
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? ", " : "") + parts[i];
  return s + ")";
}

std::string Show(const FetchQuery& q) {
  std::string s = "entity=" + q.entity;
  if (q.top) s += " top=" + std::to_string(*q.top);
  if (q.count) s += " count=" + std::to_string(*q.count);
  if (q.page) s += " page=" + std::to_string(*q.page);
  if (!q.paging_cookie.empty()) s += " cookie=" + q.paging_cookie;
  if (q.distinct) s += " distinct";
  if (q.aggregate) s += " aggregate";
  if (q.returntotalrecordcount) s += " totalcount";
  if (q.no_lock) s += " nolock";
  std::string body = ShowBody(q);
  return body.empty() ? s : s + " " + body;
}

std::string ParseOrError(std::string_view xml) {
  auto r = ParseFetchXml(xml);
  if (!r.ok()) return "ERROR: " + r.status().message();
  return Show(*r);
}

// Wraps a filter's content: <fetch><entity name='a'><filter>BODY</filter></entity></fetch>.
std::string InFilter(std::string_view body) {
  return "<fetch><entity name='a'><filter>" + std::string(body) + "</filter></entity></fetch>";
}

void ExpectQueryError(const Status& s, std::string_view input) {
  EXPECT_FALSE(s.ok()) << "accepted: " << input;
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << input;
  EXPECT_EQ(s.error_code(), err::kQueryError) << input << " → " << s.message();
  EXPECT_FALSE(s.message().empty()) << input;
}

// ---------------------------------------------------------------------------------------------
// Valid queries

struct ValidCase {
  std::string xml;
  std::string expected;
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.xml.substr(0, 200); }

class FetchValidTest : public testing::TestWithParam<ValidCase> {};

TEST_P(FetchValidTest, Parses) {
  const ValidCase& c = GetParam();
  EXPECT_EQ(ParseOrError(c.xml), c.expected) << c.xml;
}

// FormatFetchXml renders a query ParseFetchXml reads back unchanged.
TEST_P(FetchValidTest, RoundTrips) {
  auto q = ParseFetchXml(GetParam().xml);
  ASSERT_TRUE(q.ok()) << q.status().message();
  std::string xml = FormatFetchXml(*q);
  auto again = ParseFetchXml(xml);
  ASSERT_TRUE(again.ok()) << xml << " → " << again.status().message();
  EXPECT_EQ(*again, *q) << xml;
  EXPECT_EQ(FormatFetchXml(*again), xml);
}

const ValidCase kValidCases[] = {
    // Microsoft's documentation examples (fetchxml/overview, select-columns, reference pages).
    {"<fetch><entity name='account'><attribute name='name' /></entity></fetch>", "entity=account attrs=[name]"},
    {"<fetch top='5'>\n  <entity name='account'>\n    <attribute name='name' />\n  </entity>\n</fetch>",
     "entity=account top=5 attrs=[name]"},
    {"<fetch>\n  <entity name='account' />\n</fetch>", "entity=account"},
    {R"(<fetch version="1.0" output-format="xml-platform" mapping="logical" distinct="false">
  <entity name="account">
    <attribute name="name" />
    <attribute name="accountid" />
    <order attribute="name" descending="false" />
    <filter type="and">
      <condition attribute="statecode" operator="eq" value="0" />
    </filter>
  </entity>
</fetch>)",
     "entity=account attrs=[name,accountid] orders=[name] filter=and(statecode eq '0')"},
    {"<fetch mapping='logical'><entity name='account'><attribute name='accountid'/><attribute name='name'/>"
     "<attribute name='accountnumber'/></entity></fetch>",
     "entity=account attrs=[accountid,name,accountnumber]"},
    {"<fetch><entity name='account'><all-attributes /></entity></fetch>", "entity=account all"},
    {"<fetch><entity name='account'><all-attributes /><attribute name='name' /></entity></fetch>",
     "entity=account all attrs=[name]"},
    {"<fetch><entity name='account'><attribute name='name' alias='accountname' /></entity></fetch>",
     "entity=account attrs=[name@accountname]"},
    {R"(<fetch>
  <entity name='account'>
    <attribute name='name' />
    <attribute name='accountnumber' />
    <attribute name='createdon' />
    <order attribute='createdon' />
    <order attribute='name' />
    <order attribute='accountnumber' descending='true' />
  </entity>
</fetch>)",
     "entity=account attrs=[name,accountnumber,createdon] orders=[createdon,name,-accountnumber]"},
    // Fetch attributes.
    {"<fetch distinct='true'><entity name='a'/></fetch>", "entity=a distinct"},
    {"<fetch distinct='1' no-lock='1' returntotalrecordcount='true'><entity name='a'/></fetch>",
     "entity=a distinct totalcount nolock"},
    {"<fetch distinct='0' no-lock='false' returntotalrecordcount='False' aggregate='FALSE'><entity name='a'/></fetch>",
     "entity=a"},
    {"<fetch count='3' page='1'><entity name='account'><attribute name='name' /><order attribute='name' />"
     "<order attribute='accountid' /></entity></fetch>",
     "entity=account count=3 page=1 attrs=[name] orders=[name,accountid]"},
    {"<fetch count='5000' page='2147483647'><entity name='a'/></fetch>", "entity=a count=5000 page=2147483647"},
    {"<fetch top='5000'><entity name='a'/></fetch>", "entity=a top=5000"},
    {"<fetch top='007'><entity name='a'/></fetch>", "entity=a top=7"},
    {"<fetch page='2'><entity name='a'/></fetch>", "entity=a page=2"},
    {"<fetch version='1.0' output-format='xml-ado' mapping='internal' latematerialize='true' "
     "options='OptimizeForUnknown,DisableRowGoal' aggregatelimit='10' useraworderby='false' "
     "min-active-row-version='false'><entity name='a'/></fetch>",
     "entity=a"},
    // SQL 4 CDS marks its queries with a namespace declaration.
    {"<fetch xmlns:generator='MarkMpn.SQL4CDS'><entity name='a'/></fetch>", "entity=a"},
    // Ignored hints on entity, attribute, filter, condition and value.
    {"<fetch><entity name='a' enableprefiltering='1' prefilterparametername='CRM_a'><attribute name='x' "
     "build='1.003017' "
     "addedby='y' /><filter isquickfindfields='1' hint='union'><condition attribute='x' operator='in' uiname='X' "
     "uitype='a' uihidden='1'><value uiname='One' uitype='b'>1</value></condition></filter></entity></fetch>",
     "entity=a attrs=[x] filter=and(x in '1')"},
    // Filters: default and, explicit and/or, nesting, empty filters, several filters combined.
    {InFilter("<condition attribute='x' operator='eq' value='1'/>"), "entity=a filter=and(x eq '1')"},
    {"<fetch><entity name='a'><filter type='or'><condition attribute='address1_city' operator='eq' value='Redmond' />"
     "<condition attribute='address1_city' operator='eq' value='Seattle' /><condition attribute='address1_city' "
     "operator='eq' value='Bellevue' /></filter></entity></fetch>",
     "entity=a filter=or(address1_city eq 'Redmond', address1_city eq 'Seattle', address1_city eq 'Bellevue')"},
    {R"(<fetch>
  <entity name='account'>
    <attribute name='name' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <filter type='or'>
        <condition attribute='address1_city' operator='eq' value='Redmond' />
        <filter type='and'>
          <condition attribute='revenue' operator='gt' value='1000' />
          <condition attribute='numberofemployees' operator='lt' value='50' />
        </filter>
      </filter>
    </filter>
  </entity>
</fetch>)",
     "entity=account attrs=[name] filter=and(statecode eq '0', or(address1_city eq 'Redmond', and(revenue gt '1000', "
     "numberofemployees lt '50')))"},
    {"<fetch><entity name='a'><filter/></entity></fetch>", "entity=a filter=and()"},
    {"<fetch><entity name='a'><filter type='or'></filter></entity></fetch>", "entity=a filter=or()"},
    {"<fetch><entity name='a'><filter><condition attribute='x' operator='null'/></filter><filter><condition "
     "attribute='y' operator='null'/></filter></entity></fetch>",
     "entity=a filter=and(x null, y null)"},
    {"<fetch><entity name='a'><filter type='or'><condition attribute='x' operator='null'/><condition attribute='z' "
     "operator='null'/></filter><filter><condition attribute='y' operator='null'/></filter></entity></fetch>",
     "entity=a filter=and(y null, or(x null, z null))"},
    {"<fetch><entity name='a'><filter><condition attribute='y' operator='null'/></filter><filter type='or'><condition "
     "attribute='x' operator='null'/></filter></entity></fetch>",
     "entity=a filter=and(y null, or(x null))"},
    // Operators: comparison and string.
    {InFilter("<condition attribute='x' operator='ne' value='1'/>"), "entity=a filter=and(x ne '1')"},
    {InFilter("<condition attribute='x' operator='neq' value='1'/>"), "entity=a filter=and(x neq '1')"},
    {InFilter("<condition attribute='x' operator='gt' value='1'/>"), "entity=a filter=and(x gt '1')"},
    {InFilter("<condition attribute='x' operator='ge' value='1'/>"), "entity=a filter=and(x ge '1')"},
    {InFilter("<condition attribute='x' operator='lt' value='1'/>"), "entity=a filter=and(x lt '1')"},
    {InFilter("<condition attribute='x' operator='le' value='1'/>"), "entity=a filter=and(x le '1')"},
    {InFilter("<condition attribute='name' operator='like' value='%Contoso%'/>"),
     "entity=a filter=and(name like '%Contoso%')"},
    {InFilter("<condition attribute='name' operator='not-like' value='[^a-c]%'/>"),
     "entity=a filter=and(name not-like '[^a-c]%')"},
    {InFilter("<condition attribute='name' operator='begins-with' value='Co'/>"),
     "entity=a filter=and(name begins-with 'Co')"},
    {InFilter("<condition attribute='name' operator='not-begin-with' value='Co'/>"),
     "entity=a filter=and(name not-begin-with 'Co')"},
    {InFilter("<condition attribute='name' operator='ends-with' value='Ltd'/>"),
     "entity=a filter=and(name ends-with 'Ltd')"},
    {InFilter("<condition attribute='name' operator='not-end-with' value='Ltd'/>"),
     "entity=a filter=and(name not-end-with 'Ltd')"},
    {InFilter("<condition attribute='name' operator='eq' value=''/>"), "entity=a filter=and(name eq '')"},
    {InFilter("<condition attribute='name' operator='eq'><value>Contoso</value></condition>"),
     "entity=a filter=and(name eq 'Contoso')"},
    // Operators: lists and ranges.
    {InFilter("<condition attribute='address1_city' operator='in'><value>Redmond</value><value>Seattle</value>"
              "<value>Bellevue</value></condition>"),
     "entity=a filter=and(address1_city in 'Redmond'|'Seattle'|'Bellevue')"},
    {InFilter("<condition attribute='x' operator='in' value='1'/>"), "entity=a filter=and(x in '1')"},
    {InFilter("<condition attribute='x' operator='not-in'><value>1</value><value>2</value></condition>"),
     "entity=a filter=and(x not-in '1'|'2')"},
    {InFilter("<condition attribute='numberofemployees' operator='between'><value>6</value><value>20</value>"
              "</condition>"),
     "entity=a filter=and(numberofemployees between '6'|'20')"},
    {InFilter("<condition attribute='x' operator='not-between'><value>6</value><value>20</value></condition>"),
     "entity=a filter=and(x not-between '6'|'20')"},
    {InFilter("<condition attribute='hobbies' operator='contain-values'><value>1</value><value>3</value></condition>"),
     "entity=a filter=and(hobbies contain-values '1'|'3')"},
    {InFilter("<condition attribute='hobbies' operator='not-contain-values'><value>1</value></condition>"),
     "entity=a filter=and(hobbies not-contain-values '1')"},
    // Operators: null and dates.
    {InFilter("<condition attribute='x' operator='null'/>"), "entity=a filter=and(x null)"},
    {InFilter("<condition attribute='x' operator='not-null'/>"), "entity=a filter=and(x not-null)"},
    {InFilter("<condition attribute='d' operator='on' value='2023-01-01'/>"), "entity=a filter=and(d on '2023-01-01')"},
    {InFilter("<condition attribute='d' operator='on-or-before' value='2023-01-01'/>"),
     "entity=a filter=and(d on-or-before '2023-01-01')"},
    {InFilter("<condition attribute='d' operator='on-or-after' value='2023-01-01'/>"),
     "entity=a filter=and(d on-or-after '2023-01-01')"},
    {InFilter(
         "<condition attribute='d' operator='today'/><condition attribute='d' operator='yesterday'/>"
         "<condition attribute='d' operator='tomorrow'/><condition attribute='d' operator='this-week'/>"
         "<condition attribute='d' operator='last-seven-days'/><condition attribute='d' operator='this-fiscal-year'/>"),
     "entity=a filter=and(d today, d yesterday, d tomorrow, d this-week, d last-seven-days, d this-fiscal-year)"},
    {InFilter("<condition attribute='d' operator='last-x-days' value='7'/>"), "entity=a filter=and(d last-x-days '7')"},
    {InFilter("<condition attribute='d' operator='next-x-days' value='0'/>"), "entity=a filter=and(d next-x-days '0')"},
    {InFilter("<condition attribute='d' operator='last-x-hours' value='12'/>"),
     "entity=a filter=and(d last-x-hours '12')"},
    {InFilter("<condition attribute='d' operator='olderthan-x-minutes'><value>30</value></condition>"),
     "entity=a filter=and(d olderthan-x-minutes '30')"},
    {InFilter("<condition attribute='d' operator='in-fiscal-year' value='2023'/>"),
     "entity=a filter=and(d in-fiscal-year '2023')"},
    {InFilter("<condition attribute='d' operator='in-fiscal-period-and-year'><value>3</value><value>2023</value>"
              "</condition>"),
     "entity=a filter=and(d in-fiscal-period-and-year '3'|'2023')"},
    {InFilter("<condition attribute='d' operator='last-x-days' value='2147483647'/>"),
     "entity=a filter=and(d last-x-days '2147483647')"},
    // Operators: ids and hierarchy.
    {InFilter("<condition attribute='ownerid' operator='eq-userid'/><condition attribute='ownerid' "
              "operator='ne-userid'/><condition attribute='owningbusinessunit' operator='eq-businessid'/>"
              "<condition attribute='ownerid' operator='eq-useroruserteams'/>"),
     "entity=a filter=and(ownerid eq-userid, ownerid ne-userid, owningbusinessunit eq-businessid, ownerid "
     "eq-useroruserteams)"},
    {InFilter("<condition attribute='accountid' operator='under' value='{2B0AB1F0-3E51-E911-A83C-000D3A36C1A5}'/>"),
     "entity=a filter=and(accountid under '{2B0AB1F0-3E51-E911-A83C-000D3A36C1A5}')"},
    // Column comparison and entityname.
    {InFilter("<condition attribute='firstname' operator='eq' valueof='lastname'/>"),
     "entity=a filter=and(firstname eq valueof:lastname)"},
    {InFilter("<condition attribute='revenue' operator='ge' valueof='creditlimit'/>"),
     "entity=a filter=and(revenue ge valueof:creditlimit)"},
    {"<fetch><entity name='account'><attribute name='name'/><filter><condition entityname='contact' "
     "attribute='fullname' operator='null'/></filter><link-entity name='contact' from='parentcustomerid' "
     "to='accountid' link-type='outer' alias='contact'/></entity></fetch>",
     "entity=account attrs=[name] filter=and(contact.fullname null) links=[contact(parentcustomerid=accountid)"
     "@contact:outer{}]"},
    // Link-entities: 3 levels with aliases, filters and orders inside, all link types at each place.
    {R"(<fetch>
  <entity name='account'>
    <attribute name='name' />
    <link-entity name='contact' from='contactid' to='primarycontactid' link-type='inner' alias='pc'>
      <attribute name='fullname' />
      <order attribute='fullname' descending='true' />
      <filter type='or'>
        <condition attribute='statecode' operator='eq' value='0' />
      </filter>
      <link-entity name='systemuser' from='systemuserid' to='owninguser' link-type='outer' alias='owner'>
        <attribute name='fullname' alias='ownername' />
        <link-entity name='businessunit' from='businessunitid' to='businessunitid' alias='bu' visible='false'>
          <all-attributes />
        </link-entity>
      </link-entity>
    </link-entity>
  </entity>
</fetch>)",
     "entity=account attrs=[name] links=[contact(contactid=primarycontactid)@pc:inner{attrs=[fullname] "
     "orders=[-fullname] filter=or(statecode eq '0') links=[systemuser(systemuserid=owninguser)@owner:outer{"
     "attrs=[fullname@ownername] links=[businessunit(businessunitid=businessunitid)@bu:inner{all}]}]}]"},
    {"<fetch><entity name='systemuser'><attribute name='fullname' /><link-entity name='teammembership' "
     "from='systemuserid' to='systemuserid' intersect='true' visible='true'><link-entity name='team' from='teamid' "
     "to='teamid' link-type='inner' alias='team'><attribute name='name' "
     "/></link-entity></link-entity></entity></fetch>",
     "entity=systemuser attrs=[fullname] links=[teammembership(systemuserid=systemuserid):inner:visible:intersect{"
     "links=[team(teamid=teamid)@team:inner{attrs=[name]}]}]"},
    {"<fetch><entity name='a'><link-entity name='b'/></entity></fetch>", "entity=a links=[b(=):inner{}]"},
    {"<fetch><entity name='a'><link-entity name='b' from='x' to='y' link-type='exists'><filter><condition "
     "attribute='z' operator='null'/></filter></link-entity><link-entity name='c' link-type='in'/><link-entity "
     "name='d' link-type='matchfirstrowusingcrossapply'><attribute name='n'/></link-entity></entity></fetch>",
     "entity=a links=[b(x=y):exists{filter=and(z null)},c(=):in{},d(=):matchfirstrowusingcrossapply{attrs=[n]}]"},
    {R"(<fetch>
  <entity name='contact'>
    <attribute name='fullname' />
    <filter type='or'>
      <link-entity name='account' from='primarycontactid' to='contactid' link-type='any'>
      </link-entity>
      <condition attribute='statecode' operator='eq' value='1' />
    </filter>
  </entity>
</fetch>)",
     "entity=contact attrs=[fullname] filter=or(statecode eq '1', account(primarycontactid=contactid):any{})"},
    {"<fetch><entity name='contact'><attribute name='fullname' /><filter type='and'><link-entity name='account' "
     "from='primarycontactid' to='contactid' link-type='not all'><filter type='and'><condition attribute='name' "
     "operator='eq' value='Contoso' /></filter></link-entity></filter></entity></fetch>",
     "entity=contact attrs=[fullname] filter=and(account(primarycontactid=contactid):not all{filter=and(name eq "
     "'Contoso')})"},
    {InFilter("<link-entity name='b' link-type='not any' alias='nb'/><link-entity name='c' link-type='all'/>"),
     "entity=a filter=and(b(=)@nb:not any{}, c(=):all{})"},
    // Aggregates.
    {R"(<fetch aggregate='true'>
  <entity name='account'>
    <attribute name='numberofemployees' alias='Average' aggregate='avg' />
    <attribute name='numberofemployees' alias='Count' aggregate='count' />
    <attribute name='numberofemployees' alias='ColumnCount' aggregate='countcolumn' distinct='true' />
    <attribute name='numberofemployees' alias='Maximum' aggregate='max' />
    <attribute name='numberofemployees' alias='Minimum' aggregate='min' />
    <attribute name='numberofemployees' alias='Sum' aggregate='sum' />
  </entity>
</fetch>)",
     "entity=account aggregate attrs=[numberofemployees@Average:avg,numberofemployees@Count:count,"
     "numberofemployees@ColumnCount:countcolumn:distinct,numberofemployees@Maximum:max,numberofemployees@Minimum:min,"
     "numberofemployees@Sum:sum]"},
    {"<fetch aggregate='true'><entity name='account'><attribute name='numberofemployees' alias='Total' "
     "aggregate='sum' /><attribute name='address1_city' alias='Count' aggregate='count' /><attribute "
     "name='address1_city' alias='City' groupby='true' /><order alias='City' /></entity></fetch>",
     "entity=account aggregate attrs=[numberofemployees@Total:sum,address1_city@Count:count,"
     "address1_city@City:groupby] orders=[@City]"},
    {"<fetch aggregate='true'><entity name='account'><attribute name='numberofemployees' alias='Total' "
     "aggregate='sum'/><attribute name='createdon' alias='Day' groupby='true' dategrouping='day'/><attribute "
     "name='createdon' alias='Week' groupby='true' dategrouping='week'/><attribute name='createdon' alias='Month' "
     "groupby='true' dategrouping='month' usertimezone='false'/><attribute name='createdon' alias='Quarter' "
     "groupby='true' dategrouping='quarter'/><attribute name='createdon' alias='Year' groupby='true' "
     "dategrouping='year'/><attribute name='createdon' alias='FP' groupby='true' dategrouping='fiscal-period'/>"
     "<attribute name='createdon' alias='FY' groupby='1' dategrouping='fiscal-year'/><order alias='Month' "
     "descending='true'/></entity></fetch>",
     "entity=account aggregate attrs=[numberofemployees@Total:sum,createdon@Day:groupby/day,createdon@Week:groupby/"
     "week,createdon@Month:groupby/month,createdon@Quarter:groupby/quarter,createdon@Year:groupby/year,"
     "createdon@FP:groupby/fiscal-period,createdon@FY:groupby/fiscal-year] orders=[-@Month]"},
    {"<fetch aggregate='true'><entity name='contact'><attribute name='firstname' alias='firstname' groupby='true' />"
     "<attribute name='contactid' alias='occurrences' aggregate='count' /><filter><condition attribute='statecode' "
     "operator='eq' value='0' /></filter><order alias='occurrences' descending='true' /><link-entity name='account' "
     "from='accountid' to='parentcustomerid' alias='acc'><attribute name='name' alias='accname' groupby='true'/>"
     "</link-entity></entity></fetch>",
     "entity=contact aggregate attrs=[firstname@firstname:groupby,contactid@occurrences:count] "
     "orders=[-@occurrences] filter=and(statecode eq '0') links=[account(accountid=parentcustomerid)@acc:inner{"
     "attrs=[name@accname:groupby]}]"},
    {"<fetch aggregate='true' count='10' page='1'><entity name='a'><attribute name='x' alias='n' aggregate='count'/>"
     "</entity></fetch>",
     "entity=a count=10 page=1 aggregate attrs=[x@n:count]"},
    // Paging cookie: XML-escaped in the attribute, decoded in the model.
    {"<fetch count='2' page='2' paging-cookie='&lt;cookie page=&quot;1&quot;&gt;&lt;accountid "
     "last=&quot;{E062B974-7F8D-DC11-9048-0003FF27AC3B}&quot; first=&quot;{60B934EF-798D-DC11-9048-0003FF27AC3B}&quot; "
     "/&gt;&lt;/cookie&gt;'><entity name='account'><all-attributes/></entity></fetch>",
     "entity=account count=2 page=2 cookie=<cookie page=\"1\"><accountid "
     "last=\"{E062B974-7F8D-DC11-9048-0003FF27AC3B}\" "
     "first=\"{60B934EF-798D-DC11-9048-0003FF27AC3B}\" /></cookie> all"},
    {"<fetch page='3' paging-cookie='&lt;cookie page=\"2\"&gt;&lt;name last=\"B&amp;amp;Q\" first=\"A\" "
     "/&gt;&lt;/cookie&gt;'><entity name='account'/></fetch>",
     "entity=account page=3 cookie=<cookie page=\"2\"><name last=\"B&amp;Q\" first=\"A\" /></cookie>"},
    // Entities, character references, whitespace, CDATA, comments, the declaration.
    {InFilter(
         "<condition attribute='name' operator='eq' value='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;&#233;'/>"),
     "entity=a filter=and(name eq '<>&\"'AB😀é')"},
    {InFilter("<condition attribute='name' operator='in'><value>&lt;b&gt; &amp; co</value><value>O&apos;Brien</value>"
              "<value>&#x20;</value></condition>"),
     "entity=a filter=and(name in '<b> & co'|'O'Brien'|' ')"},
    {InFilter("<condition attribute=\"name\" operator=\"eq\" value=\"It's &quot;quoted&quot;\"/>"),
     "entity=a filter=and(name eq 'It's \"quoted\"')"},
    {InFilter("<condition attribute='name' operator='eq' value='Zürich 東京'/>"),
     "entity=a filter=and(name eq 'Zürich 東京')"},
    {InFilter("<condition attribute='name' operator='eq' value='a\tb\r\nc&#10;d&#9;e'/>"),
     "entity=a filter=and(name eq 'a b c\nd\te')"},
    {InFilter("<condition attribute='name' operator='in'><value>line1\r\nline2\rline3</value></condition>"),
     "entity=a filter=and(name in 'line1\nline2\nline3')"},
    {InFilter("<condition attribute='name' operator='in'><value><![CDATA[<b>&amp;]]></value><value>a<!-- c -->b"
              "</value></condition>"),
     "entity=a filter=and(name in '<b>&amp;'|'ab')"},
    {InFilter("<condition attribute='name' operator='eq'><value>  spaced  </value></condition>"),
     "entity=a filter=and(name eq '  spaced  ')"},
    {InFilter("<condition attribute='name' operator='eq'><value></value></condition>"),
     "entity=a filter=and(name eq '')"},
    {InFilter("<condition attribute='name' operator='eq'><value/></condition>"), "entity=a filter=and(name eq '')"},
    {"<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<fetch><entity name='a'/></fetch>", "entity=a"},
    {"<?xml version='1.0' encoding='utf-16' standalone='yes'?><fetch><entity name='a'/></fetch>", "entity=a"},
    {"\xEF\xBB\xBF<?xml version='1.0'?><fetch><entity name='a'/></fetch>", "entity=a"},
    {"<!-- a view --><fetch><!-- x --><entity name='a'><!----></entity><!-- - --></fetch><!-- end -->\n", "entity=a"},
    {"\n\t <fetch  top = \"3\"\n><entity\r\nname='a'\t></entity\n></fetch >  ", "entity=a top=3"},
    {"<fetch><entity name='a'><attribute name='x'></attribute><order attribute='x'></order></entity></fetch>",
     "entity=a attrs=[x] orders=[x]"},
    // Optional attributes with empty values are absent.
    {"<fetch paging-cookie=''><entity name='a'><link-entity name='b' alias='' from='' to=''/><filter><condition "
     "entityname='' attribute='x' operator='null' valueof=''/></filter></entity></fetch>",
     "entity=a filter=and(x null) links=[b(=):inner{}]"},
};

INSTANTIATE_TEST_SUITE_P(Fetch, FetchValidTest, testing::ValuesIn(kValidCases));

// ---------------------------------------------------------------------------------------------
// Malformed and invalid queries

struct ErrorCase {
  std::string xml;
  std::string message;  // a substring of the error message
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.xml.substr(0, 200); }

class FetchErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(FetchErrorTest, Rejects) {
  const ErrorCase& c = GetParam();
  auto r = ParseFetchXml(c.xml);
  ExpectQueryError(r.status(), c.xml);
  EXPECT_NE(r.status().message().find(c.message), std::string::npos)
      << c.xml << "\n  message: " << r.status().message() << "\n  expected to contain: " << c.message;
}

const ErrorCase kErrorCases[] = {
    // XML syntax.
    {"", "at line 1, column 1: the document has no root element."},
    {"  \n ", "the document has no root element."},
    {"<fetch>", "at line 1, column 1: the element <fetch> is not closed."},
    {"<fetch", "the start tag of <fetch> is not closed."},
    {"<fetch><entity name='a'></entity>", "the element <fetch> is not closed."},
    {"<fetch><entity name='a'></fetch>",
     "at line 1, column 25: the end tag </fetch> does not match the start tag <entity> at line 1, column 8."},
    {"<fetch><entity name='a'/></fetchx>", "the end tag </fetchx> does not match the start tag <fetch>"},
    {InFilter("<condition attribute='x' operator='eq' value='1'>"), "the end tag </filter> does not match"},
    {"<fetch><entity name='a'/></ fetch>", "expected an element name after '</'."},
    {"<fetch><entity name='a'/></fetch x>", "expected '>' to end </fetch>."},
    {"</fetch>", "expected an element name after '<'."},
    {"<1fetch/>", "expected an element name after '<'."},
    {"<fetch><entity name=a /></fetch>", "the value of the attribute 'name' must be in single or double quotes."},
    {"<fetch><entity name='a\"/>", "the value of the attribute 'name' is not closed."},
    {"<fetch><entity name/></fetch>", "expected '=' after the attribute name 'name'."},
    {"<fetch><entity name='a'name='b'/></fetch>", "expected whitespace, '>' or '/>' in the start tag of <entity>."},
    {"<fetch><entity name='a' name='b'/></fetch>", "the attribute 'name' appears more than once on <entity>."},
    {"<fetch><entity name='a' = 'b'/></fetch>", "expected an attribute name."},
    {"<fetch><entity name='a'/ ></fetch>", "expected whitespace, '>' or '/>'"},
    {"<fetch><entity name='<'/></fetch>", "'<' is not allowed in attribute values (write &lt;)."},
    {"<fetch paging-cookie='<cookie page=\"1\"><accountid last=\"{E062B974-7F8D-DC11-9048-0003FF27AC3B}\" /></cookie>' "
     "page='2'><entity name='account'/></fetch>",
     "'<' is not allowed in attribute values"},
    {"<!DOCTYPE fetch><fetch><entity name='a'/></fetch>", "DTDs (<!DOCTYPE>) are not allowed."},
    {"<?xml version='1.0'?><!DOCTYPE fetch [<!ENTITY x 'y'>]><fetch><entity name='&x;'/></fetch>", "DTDs"},
    {"<fetch><!DOCTYPE x><entity name='a'/></fetch>", "DTDs"},
    {"<?xml-stylesheet href='a.xsl'?><fetch><entity name='a'/></fetch>", "processing instructions are not allowed."},
    {"<fetch><?php echo 1 ?><entity name='a'/></fetch>", "processing instructions are not allowed."},
    {"<fetch><entity name='a'/></fetch><?pi?>", "processing instructions are not allowed."},
    {" <?xml version='1.0'?><fetch><entity name='a'/></fetch>",
     "the XML declaration is only allowed at the very start of the document."},
    {"<?xml version='1.0'?><?xml version='1.0'?><fetch/>", "only allowed at the very start"},
    {"<?xml encoding='utf-8'?><fetch/>", "the XML declaration must start with version."},
    {"<?xml version='1.0' standalone='yes' encoding='utf-8'?><fetch/>", "unexpected 'encoding' in the XML declaration"},
    {"<?xml version='2.0'?><fetch/>", "invalid version '2.0' in the XML declaration."},
    {"<?xml version='1.0'><fetch/>", "expected whitespace or '?>' in the XML declaration."},
    {"<?xml ?><fetch/>", "the XML declaration must have a version."},
    {"<fetch><entity name='a'/></fetch><fetch/>", "only one root element is allowed."},
    {"<fetch><entity name='a'/></fetch>junk", "text is not allowed after the root element."},
    {"junk<fetch><entity name='a'/></fetch>", "text is not allowed before the root element."},
    {"<fetch><!-- a -- b --><entity name='a'/></fetch>", "'--' is not allowed inside a comment."},
    {"<fetch><!-- a ---><entity name='a'/></fetch>", "'--' is not allowed inside a comment."},
    {"<fetch><!-- unclosed <entity name='a'/></fetch>", "the comment is not closed with '-->'."},
    {"<fetch><![CDATA[x</fetch>", "the CDATA section is not closed with ']]>'."},
    {"<fetch><!ELEMENT x><entity name='a'/></fetch>", "unexpected markup '<!'."},
    {"<fetch>&nbsp;<entity name='a'/></fetch>", "unknown entity '&nbsp;'"},
    {"<fetch><entity name='a &amp b'/></fetch>", "'&' must be written as &amp;"},
    {"<fetch><entity name='AT&T'/></fetch>", "'&' must be written as &amp;"},
    {"<fetch><entity name='&#0;'/></fetch>", "the character reference '&#0;' is not an allowed XML character."},
    {"<fetch><entity name='&#xD800;'/></fetch>", "is not an allowed XML character."},
    {"<fetch><entity name='&#xFFFE;'/></fetch>", "is not an allowed XML character."},
    {"<fetch><entity name='&#99999999999999999999999999;'/></fetch>", "is not an allowed XML character."},
    {"<fetch><entity name='&#x110000;'/></fetch>", "is not an allowed XML character."},
    {"<fetch><entity name='&#;'/></fetch>", "malformed character reference"},
    {"<fetch><entity name='&#x;'/></fetch>", "malformed character reference"},
    {"<fetch><entity name='&#12'/></fetch>", "malformed character reference"},
    {"<fetch><entity name='&#x1G;'/></fetch>", "malformed character reference"},
    {"<fetch><entity name='a'/>\xff</fetch>", "at line 1, column 26: the text is not valid UTF-8."},
    {"<fetch><entity name='\xc0\xaf'/></fetch>", "the text is not valid UTF-8."},
    {"<fetch><entity name='\xed\xa0\x80'/></fetch>", "the text is not valid UTF-8."},
    {"<fetch><entity name='\xe2\x82'/></fetch>", "the text is not valid UTF-8."},
    {std::string("<fetch><entity name='a\0'/></fetch>", 30), "the character U+0000 is not allowed in XML."},
    {"<fetch>\n<entity name='\x01'/></fetch>", "at line 2, column 15: the character U+0001 is not allowed in XML."},
    {"<fetch><entity name='\xef\xbf\xbf'/></fetch>", "the character U+FFFF is not allowed in XML."},
    {InFilter("<condition attribute='x' operator='in'><value>a]]>b</value></condition>"),
     "']]>' is not allowed in text."},
    // Document structure.
    {"<account><entity name='a'/></account>", "the root element must be <fetch>, not <account>."},
    {"<FETCH><entity name='a'/></FETCH>", "the root element must be <fetch>, not <FETCH>."},
    {"<a:fetch xmlns:a='x'><entity name='a'/></a:fetch>", "the root element must be <fetch>, not <a:fetch>."},
    {"<fetch/>", "<fetch> at line 1, column 1: the fetch element must contain an entity element."},
    {"<fetch><!-- none --></fetch>", "the fetch element must contain an entity element."},
    {"<fetch><entity name='a'/><entity name='b'/></fetch>",
     "<entity> at line 1, column 26: the fetch element can contain only one entity element."},
    {"<fetch><order attribute='name'/><entity name='a'/></fetch>", "an order element directly inside fetch"},
    {"<fetch><entity/></fetch>", "<entity> at line 1, column 8: the required attribute 'name' is missing."},
    {"<fetch><entity name=''/></fetch>", "the attribute 'name' must not be empty."},
    {"<fetch><entity name='a'><foo/></entity></fetch>",
     "<foo> at line 1, column 25: the element 'entity' has invalid child element 'foo'."},
    {"<fetch><entity name='a'><Attribute name='x'/></entity></fetch>", "has invalid child element 'Attribute'."},
    {"<fetch><entity name='a'><no-attrs/></entity></fetch>", "has invalid child element 'no-attrs'."},
    {"<fetch><entity name='a'><filter><value>1</value></filter></entity></fetch>",
     "the element 'filter' has invalid child element 'value'."},
    {InFilter("<condition attribute='x' operator='in'><foo/></condition>"),
     "the element 'condition' has invalid child element 'foo'."},
    {InFilter("<condition attribute='x' operator='in'><value><b>1</b></value></condition>"),
     "the element 'value' cannot contain child element 'b'."},
    {"<fetch><entity name='a'><attribute name='x'><alias/></attribute></entity></fetch>",
     "the element 'attribute' has invalid child element 'alias'."},
    {"<fetch><entity name='a'><all-attributes>x</all-attributes></entity></fetch>",
     "the element 'all-attributes' cannot contain text."},
    {"<fetch>text<entity name='a'/></fetch>", "at line 1, column 8: the element 'fetch' cannot contain text."},
    {"<fetch><entity name='a'>\n   name</entity></fetch>",
     "at line 2, column 4: the element 'entity' cannot contain text."},
    {"<fetch><![CDATA[x]]><entity name='a'/></fetch>", "the element 'fetch' cannot contain text."},
    {InFilter("<condition attribute='x' operator='null'>x</condition>"),
     "the element 'condition' cannot contain text."},
    // Attributes: undeclared, unsupported, invalid values.
    {"<fetch foo='1'><entity name='a'/></fetch>", "<fetch> at line 1, column 1: the 'foo' attribute is not declared."},
    {"<fetch><entity name='a' alias='b'/></fetch>", "the 'alias' attribute is not declared."},
    {"<fetch><entity name='a'><all-attributes name='x'/></entity></fetch>", "the 'name' attribute is not declared."},
    {"<fetch xml:lang='en'><entity name='a'/></fetch>", "the 'xml:lang' attribute is not declared."},
    {"<fetch utc-offset='60'><entity name='a'/></fetch>", "the 'utc-offset' attribute is not supported by Tributary."},
    {"<fetch datasource='retained'><entity name='a'/></fetch>", "the 'datasource' attribute is not supported"},
    {"<fetch><entity name='a'><attribute name='x' rowaggregate='CountChildren'/></entity></fetch>",
     "the 'rowaggregate' attribute is not supported"},
    {"<fetch><entity name='a'><order attribute='x' entityname='b'/></entity></fetch>",
     "the 'entityname' attribute is not supported"},
    {InFilter("<condition column='x' operator='null'/>"), "the 'column' attribute is not supported"},
    {"<fetch distinct='yes'><entity name='a'/></fetch>",
     "the 'distinct' attribute is invalid: 'yes' is not a boolean (true, false, 1 or 0)."},
    {"<fetch no-lock=''><entity name='a'/></fetch>", "the 'no-lock' attribute is invalid"},
    {"<fetch mapping='physical'><entity name='a'/></fetch>",
     "the 'mapping' attribute is invalid: 'physical' is not one of logical or internal."},
    {"<fetch output-format='json'><entity name='a'/></fetch>", "the 'output-format' attribute is invalid"},
    // Paging and top.
    {"<fetch top='5' page='1'><entity name='a'/></fetch>",
     "The top attribute can't be specified with paging attribute page"},
    {"<fetch top='5' count='10'><entity name='a'/></fetch>",
     "The top attribute can't be specified with paging attribute count"},
    {"<fetch count='5001'><entity name='a'/></fetch>",
     "the 'count' attribute is invalid: '5001' is not an integer from 1 to 5000."},
    {"<fetch top='5001'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    {"<fetch top='0'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    {"<fetch count='0'><entity name='a'/></fetch>", "the 'count' attribute is invalid"},
    {"<fetch page='0'><entity name='a'/></fetch>", "the 'page' attribute is invalid"},
    {"<fetch page='-1'><entity name='a'/></fetch>", "the 'page' attribute is invalid: '-1'"},
    {"<fetch page='2147483648'><entity name='a'/></fetch>", "the 'page' attribute is invalid"},
    {"<fetch top='99999999999999999999'><entity name='a'/></fetch>",
     "the 'top' attribute is invalid: '99999999999999999999' is not an integer from 1 to 5000."},
    {"<fetch top='" + std::string(5000, '9') + "'><entity name='a'/></fetch>", "9999…' is not an integer"},
    {"<fetch top='abc'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    {"<fetch top=' 5'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    {"<fetch top='+5'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    {"<fetch top='5.0'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    {"<fetch top='1e3'><entity name='a'/></fetch>", "the 'top' attribute is invalid"},
    // Filters and conditions.
    {"<fetch><entity name='a'><filter type='xor'/></entity></fetch>",
     "the 'type' attribute is invalid: 'xor' is not one of and or or."},
    {"<fetch><entity name='a'><filter type='AND'/></entity></fetch>", "the 'type' attribute is invalid"},
    {InFilter("<condition attribute='x' operator='foo' value='1'/>"),
     "<condition> at line 1, column 33: the 'operator' attribute is invalid: 'foo' is not a condition operator."},
    {InFilter("<condition attribute='x' operator='EQ' value='1'/>"), "'EQ' is not a condition operator."},
    {InFilter("<condition attribute='x' operator='' value='1'/>"), "'' is not a condition operator."},
    {InFilter("<condition attribute='x' value='1'/>"), "the required attribute 'operator' is missing."},
    {InFilter("<condition operator='eq' value='1'/>"), "the required attribute 'attribute' is missing."},
    {InFilter("<condition attribute='x' operator='null' value='1'/>"),
     "the operator 'null' on 'x' takes no value, but 1 was given."},
    {InFilter("<condition attribute='x' operator='not-null' value=''/>"), "takes no value, but 1 was given."},
    {InFilter("<condition attribute='d' operator='today'><value>1</value><value>2</value></condition>"),
     "the operator 'today' on 'd' takes no value, but 2 were given."},
    {InFilter("<condition attribute='o' operator='eq-userid' value='x'/>"),
     "the operator 'eq-userid' on 'o' takes no value"},
    {InFilter("<condition attribute='o' operator='eq-businessid' value='x'/>"), "takes no value"},
    {InFilter("<condition attribute='x' operator='eq'/>"),
     "the operator 'eq' on 'x' needs exactly one value, but 0 were given."},
    {InFilter("<condition attribute='x' operator='like'><value>a</value><value>b</value></condition>"),
     "the operator 'like' on 'x' needs exactly one value, but 2 were given."},
    {InFilter("<condition attribute='x' operator='in'/>"), "the operator 'in' on 'x' needs at least one value."},
    {InFilter("<condition attribute='x' operator='not-in'></condition>"), "needs at least one value."},
    {InFilter("<condition attribute='x' operator='between' value='1'/>"),
     "the operator 'between' on 'x' needs exactly two values, but 1 was given."},
    {InFilter("<condition attribute='x' operator='not-between'><value>1</value><value>2</value><value>3</value>"
              "</condition>"),
     "needs exactly two values, but 3 were given."},
    {InFilter("<condition attribute='d' operator='last-x-days' value='abc'/>"),
     "the operator 'last-x-days' on 'd' needs a whole number from 0 to 2147483647, not 'abc'."},
    {InFilter("<condition attribute='d' operator='last-x-days' value='-1'/>"), "needs a whole number"},
    {InFilter("<condition attribute='d' operator='next-x-hours' value='99999999999'/>"), "needs a whole number"},
    {InFilter("<condition attribute='d' operator='last-x-months' value=''/>"), "needs a whole number"},
    {InFilter("<condition attribute='d' operator='last-x-days' value=' 7'/>"), "needs a whole number"},
    {InFilter("<condition attribute='d' operator='last-x-days'/>"), "needs exactly one value, but 0 were given."},
    {InFilter("<condition attribute='d' operator='in-fiscal-period-and-year'><value>3</value><value>FY23</value>"
              "</condition>"),
     "needs a whole number from 0 to 2147483647, not 'FY23'."},
    {InFilter("<condition attribute='x' operator='eq' value='1'><value>2</value></condition>"),
     "a condition can't have both a value attribute and value elements."},
    {InFilter("<condition attribute='x' operator='like' valueof='y'/>"),
     "the operator 'like' on 'x' can't compare with another column (valueof); only eq, neq, ne, gt, ge, lt or le can."},
    {InFilter("<condition attribute='x' operator='eq' valueof='y' value='1'/>"),
     "a condition can't have both valueof and a value."},
    // Link-entities.
    {"<fetch><entity name='a'><link-entity from='x' to='y'/></entity></fetch>",
     "<link-entity> at line 1, column 25: the required attribute 'name' is missing."},
    {"<fetch><entity name='a'><link-entity name='b' link-type='sideways'/></entity></fetch>",
     "the 'link-type' attribute is invalid: 'sideways' is not one of inner, outer, exists, in, "
     "matchfirstrowusingcrossapply, any, not any, all or not all."},
    {"<fetch><entity name='a'><link-entity name='b' link-type='Inner'/></entity></fetch>", "'Inner' is not one of"},
    {"<fetch><entity name='a'><link-entity name='b' link-type='any'/></entity></fetch>",
     "the link-type 'any' can only be used on a link-entity inside a filter element."},
    {InFilter("<link-entity name='b' link-type='inner'/>"),
     "the 'link-type' attribute is invalid: a link-entity inside a filter must use any, not any, all or not all, not "
     "'inner'."},
    {InFilter("<link-entity name='b'/>"),
     "a link-entity inside a filter needs a link-type of any, not any, all or not all."},
    {"<fetch><entity name='a'><link-entity name='b' link-type='exists'><attribute name='x'/></link-entity></entity>"
     "</fetch>",
     "<attribute> at line 1, column 66: a link-entity with link-type 'exists' can't return columns."},
    {InFilter("<link-entity name='b' link-type='any'><all-attributes/></link-entity>"),
     "a link-entity with link-type 'any' can't return columns."},
    {"<fetch><entity name='a'><link-entity name='b' alias='x'/><link-entity name='c' alias='x'/></entity></fetch>",
     "the alias 'x' is used by more than one link-entity."},
    {"<fetch><entity name='a'><link-entity name='b' alias='x'><link-entity name='c' alias='x'/></link-entity>"
     "</entity></fetch>",
     "the alias 'x' is used by more than one link-entity."},
    {"<fetch><entity name='a'><link-entity name='b' visible='maybe'/></entity></fetch>",
     "the 'visible' attribute is invalid"},
    {"<fetch><entity name='a'><link-entity name='b'><filter/><foo/></link-entity></entity></fetch>",
     "the element 'link-entity' has invalid child element 'foo'."},
    // Aggregates.
    {"<fetch aggregate='true'><entity name='a'><attribute name='statecodename'/></entity></fetch>",
     "An attribute can not be requested when an aggregate operation has been specified and its neither groupby nor "
     "aggregate."},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' alias='n' aggregate='count'/><link-entity "
     "name='b'><attribute name='y'/></link-entity></entity></fetch>",
     "its neither groupby nor aggregate."},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' groupby='true'/></entity></fetch>",
     "the attribute 'x' needs an alias in an aggregate query."},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' aggregate='sum'/></entity></fetch>",
     "the attribute 'x' needs an alias in an aggregate query."},
    {"<fetch aggregate='true'><entity name='a'><all-attributes/></entity></fetch>",
     "all-attributes can't be used in an aggregate query."},
    {"<fetch><entity name='a'><attribute name='x' alias='n' aggregate='count'/></entity></fetch>",
     "the attribute 'x' uses aggregate, which requires aggregate='true' on the fetch element."},
    {"<fetch><entity name='a'><attribute name='x' alias='n' groupby='true'/></entity></fetch>",
     "the attribute 'x' uses groupby, which requires aggregate='true'"},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' alias='n' aggregate='sum' groupby='true'/></entity>"
     "</fetch>",
     "an attribute can't have both aggregate and groupby."},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' alias='n' aggregate='count' dategrouping='day'/>"
     "</entity></fetch>",
     "dategrouping requires groupby='true'."},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' alias='n' aggregate='median'/></entity></fetch>",
     "the 'aggregate' attribute is invalid: 'median' is not one of count, countcolumn, sum, avg, min or max."},
    {"<fetch aggregate='true'><entity name='a'><attribute name='x' alias='n' groupby='true' dategrouping='decade'/>"
     "</entity></fetch>",
     "the 'dategrouping' attribute is invalid: 'decade' is not one of day, week, month, quarter, year, fiscal-period "
     "or fiscal-year."},
    {"<fetch><entity name='a'><attribute/></entity></fetch>", "the required attribute 'name' is missing."},
    // Orders.
    {"<fetch><entity name='a'><order/></entity></fetch>", "an order element needs an attribute or an alias."},
    {"<fetch><entity name='a'><order attribute='' alias=''/></entity></fetch>", "needs an attribute or an alias."},
    {"<fetch><entity name='a'><order attribute='x' alias='y'/></entity></fetch>",
     "an order element can't have both an attribute and an alias."},
    {"<fetch><entity name='a'><order attribute='x' descending='desc'/></entity></fetch>",
     "the 'descending' attribute is invalid"},
    // Long names are cut in messages.
    {"<fetch><entity name='a'><" + std::string(1000, 'x') + "/></entity></fetch>",
     "has invalid child element '" + std::string(64, 'x') + "…'."},
};

INSTANTIATE_TEST_SUITE_P(Fetch, FetchErrorTest, testing::ValuesIn(kErrorCases));

// ---------------------------------------------------------------------------------------------
// Operators

TEST(FetchOperatorTest, KnowsTheSchemaOperators) {
  for (const char* op : {"eq",
                         "neq",
                         "ne",
                         "gt",
                         "ge",
                         "le",
                         "lt",
                         "like",
                         "not-like",
                         "in",
                         "not-in",
                         "between",
                         "not-between",
                         "null",
                         "not-null",
                         "yesterday",
                         "today",
                         "tomorrow",
                         "last-seven-days",
                         "next-seven-days",
                         "last-week",
                         "this-week",
                         "next-week",
                         "last-month",
                         "this-month",
                         "next-month",
                         "on",
                         "on-or-before",
                         "on-or-after",
                         "last-year",
                         "this-year",
                         "next-year",
                         "last-x-hours",
                         "next-x-hours",
                         "last-x-days",
                         "next-x-days",
                         "last-x-weeks",
                         "next-x-weeks",
                         "last-x-months",
                         "next-x-months",
                         "olderthan-x-months",
                         "olderthan-x-years",
                         "olderthan-x-weeks",
                         "olderthan-x-days",
                         "olderthan-x-hours",
                         "olderthan-x-minutes",
                         "last-x-years",
                         "next-x-years",
                         "eq-userid",
                         "ne-userid",
                         "eq-userteams",
                         "eq-useroruserteams",
                         "eq-useroruserhierarchy",
                         "eq-useroruserhierarchyandteams",
                         "eq-businessid",
                         "ne-businessid",
                         "eq-userlanguage",
                         "this-fiscal-year",
                         "this-fiscal-period",
                         "next-fiscal-year",
                         "next-fiscal-period",
                         "last-fiscal-year",
                         "last-fiscal-period",
                         "last-x-fiscal-years",
                         "last-x-fiscal-periods",
                         "next-x-fiscal-years",
                         "next-x-fiscal-periods",
                         "in-fiscal-year",
                         "in-fiscal-period",
                         "in-fiscal-period-and-year",
                         "in-or-before-fiscal-period-and-year",
                         "in-or-after-fiscal-period-and-year",
                         "begins-with",
                         "not-begin-with",
                         "ends-with",
                         "not-end-with",
                         "under",
                         "eq-or-under",
                         "not-under",
                         "above",
                         "eq-or-above",
                         "contain-values",
                         "not-contain-values"}) {
    EXPECT_TRUE(IsKnownFetchOperator(op)) << op;
  }
  for (const char* op : {"", "EQ", "Eq", "equals", "contains", "not", "eq ", " eq", "last-x-day", "on-or-after-x"})
    EXPECT_FALSE(IsKnownFetchOperator(op)) << op;
}

// Every known operator is accepted with the right number of values and rejected with one more.
TEST(FetchOperatorTest, ArityIsEnforcedForEveryOperator) {
  struct Arity {
    std::vector<std::string> ops;
    std::string good;
    std::string bad;
  };
  const Arity kArities[] = {
      {{"null",
        "not-null",
        "yesterday",
        "today",
        "tomorrow",
        "last-seven-days",
        "next-seven-days",
        "last-week",
        "this-week",
        "next-week",
        "last-month",
        "this-month",
        "next-month",
        "last-year",
        "this-year",
        "next-year",
        "eq-userid",
        "ne-userid",
        "eq-userteams",
        "eq-useroruserteams",
        "eq-useroruserhierarchy",
        "eq-useroruserhierarchyandteams",
        "eq-businessid",
        "ne-businessid",
        "eq-userlanguage",
        "this-fiscal-year",
        "this-fiscal-period",
        "next-fiscal-year",
        "next-fiscal-period",
        "last-fiscal-year",
        "last-fiscal-period"},
       "",
       "<value>1</value>"},
      {{"eq",        "neq",          "ne",    "gt",           "ge",          "le",          "lt",
        "like",      "not-like",     "on",    "on-or-before", "on-or-after", "begins-with", "not-begin-with",
        "ends-with", "not-end-with", "under", "eq-or-under",  "not-under",   "above",       "eq-or-above"},
       "<value>x</value>",
       "<value>x</value><value>y</value>"},
      {{"last-x-hours",        "next-x-hours",          "last-x-days",         "next-x-days",
        "last-x-weeks",        "next-x-weeks",          "last-x-months",       "next-x-months",
        "olderthan-x-months",  "olderthan-x-years",     "olderthan-x-weeks",   "olderthan-x-days",
        "olderthan-x-hours",   "olderthan-x-minutes",   "last-x-years",        "next-x-years",
        "last-x-fiscal-years", "last-x-fiscal-periods", "next-x-fiscal-years", "next-x-fiscal-periods",
        "in-fiscal-year",      "in-fiscal-period"},
       "<value>3</value>",
       "<value>x</value>"},
      {{"between", "not-between"}, "<value>1</value><value>2</value>", "<value>1</value>"},
      {{"in-fiscal-period-and-year", "in-or-before-fiscal-period-and-year", "in-or-after-fiscal-period-and-year"},
       "<value>3</value><value>2023</value>",
       "<value>3</value><value>x</value>"},
      {{"in", "not-in", "contain-values", "not-contain-values"},
       "<value>1</value><value>2</value><value>3</value>",
       ""},
  };
  size_t total = 0;
  for (const Arity& a : kArities) {
    for (const std::string& op : a.ops) {
      ++total;
      std::string good = InFilter("<condition attribute='c' operator='" + op + "'>" + a.good + "</condition>");
      std::string bad = InFilter("<condition attribute='c' operator='" + op + "'>" + a.bad + "</condition>");
      EXPECT_TRUE(ParseFetchXml(good).ok()) << ParseOrError(good);
      ExpectQueryError(ParseFetchXml(bad).status(), bad);
    }
  }
  EXPECT_EQ(total, 83u);  // the whole schema enumeration
}

// ---------------------------------------------------------------------------------------------
// Web API delivery, paging cookies

TEST(FetchWebApiTest, ParsesTheUrlDecodedQueryParameter) {
  // The example of "Use FetchXML with Web API", as clients send it (encodeURIComponent).
  std::string decoded;
  ASSERT_TRUE(PercentDecode(
      "%3Cfetch%20mapping%3D%27logical%27%3E%3Centity%20name%3D%27account%27%3E%3Cattribute%20name%3D%27accountid%27"
      "%2F%3E%3Cattribute%20name%3D%27name%27%2F%3E%3Cattribute%20name%3D%27accountnumber%27%2F%3E%3C%2Fentity%3E%3C"
      "%2Ffetch%3E",
      decoded, /*plus_is_space=*/true));
  EXPECT_EQ(ParseOrError(decoded), "entity=account attrs=[accountid,name,accountnumber]");
}

TEST(FetchWebApiTest, PagingCookieSurvivesUrlEncoding) {
  // What DynamicsWebApi does for page 2: double-decode the cookie of the annotation, XML-escape it,
  // put it in paging-cookie, and send the whole fetch with encodeURIComponent.
  const std::string annotation_cookie =
      "%253ccookie%2520page%253d%25221%2522%253e%253caccountid%2520last%253d%2522%257b7A91C4A8-9E2F-EA11-A812-"
      "000D3A1B14A2%257d%2522%2520first%253d%2522%257b7891C4A8-9E2F-EA11-A812-000D3A1B14A2%257d%2522%2520%252f%253e%253"
      "c%252fcookie%253e";
  std::string once, inner;
  ASSERT_TRUE(PercentDecode(annotation_cookie, once, false));
  ASSERT_TRUE(PercentDecode(once, inner, false));
  ASSERT_EQ(inner,
            "<cookie page=\"1\"><accountid last=\"{7A91C4A8-9E2F-EA11-A812-000D3A1B14A2}\" "
            "first=\"{7891C4A8-9E2F-EA11-A812-000D3A1B14A2}\" /></cookie>");
  std::string escaped;
  for (char c : inner) {
    if (c == '<') {
      escaped += "&lt;";
    } else if (c == '>') {
      escaped += "&gt;";
    } else if (c == '"') {
      escaped += "&quot;";
    } else if (c == '&') {
      escaped += "&amp;";
    } else {
      escaped += c;
    }
  }
  std::string fetch = "<fetch count=\"50\" page=\"2\" paging-cookie=\"" + escaped +
                      "\"><entity name=\"account\"><attribute name=\"name\" /><order attribute=\"accountid\" />"
                      "</entity></fetch>";
  std::string url = PercentEncode(fetch);
  ASSERT_EQ(url.find('<'), std::string::npos);
  std::string decoded;
  ASSERT_TRUE(PercentDecode(url, decoded, /*plus_is_space=*/true));
  auto q = ParseFetchXml(decoded);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->paging_cookie, inner);
  EXPECT_EQ(q->page, 2);
  EXPECT_EQ(q->count, 50);
  EXPECT_FALSE(q->top.has_value());
}

// ---------------------------------------------------------------------------------------------
// Limits: nesting, size, time

std::string NestedFilters(int depth) {
  std::string s = "<fetch><entity name='a'>";
  for (int i = 0; i < depth; ++i) s += "<filter>";
  s += "<condition attribute='x' operator='null'/>";
  for (int i = 0; i < depth; ++i) s += "</filter>";
  return s + "</entity></fetch>";
}

TEST(FetchLimitTest, FiltersNestUpTo32Levels) {
  auto q = ParseFetchXml(NestedFilters(kMaxFetchNesting));
  ASSERT_TRUE(q.ok()) << q.status().message();
  const FetchFilter* f = &*q->filter;
  int depth = 1;
  while (!f->filters.empty()) {
    f = &f->filters.front();
    ++depth;
  }
  EXPECT_EQ(depth, 32);
  EXPECT_EQ(Show(f->conditions.front()), "x null");

  auto deeper = ParseFetchXml(NestedFilters(kMaxFetchNesting + 1));
  ExpectQueryError(deeper.status(), "33 filters");
  EXPECT_EQ(deeper.status().message(),
            "Invalid FetchXML: filter and link-entity elements are nested 33 levels deep; at most 32 are supported.");
}

TEST(FetchLimitTest, FiltersAndLinksCountTogether) {
  // A filter, then link-entities of type any, each with a filter, and optionally one more filter.
  auto nest = [](int links, bool extra) {
    std::string s = "<fetch><entity name='a'><filter>";
    for (int i = 0; i < links; ++i) s += "<link-entity name='l' link-type='any'><filter>";
    if (extra) s += "<filter/>";
    for (int i = 0; i < links; ++i) s += "</filter></link-entity>";
    return s + "</filter></entity></fetch>";
  };
  EXPECT_TRUE(ParseFetchXml(nest(15, true)).ok()) << ParseOrError(nest(15, true));  // 1 + 30 + 1 levels
  auto r = ParseFetchXml(nest(16, false));                                          // 1 + 32 levels
  ExpectQueryError(r.status(), "33 levels");
  EXPECT_NE(r.status().message().find("nested 33 levels deep"), std::string::npos) << r.status().message();
}

TEST(FetchLimitTest, MergedFiltersCountTheirWrapper) {
  // An or-filter merged with a second filter sits one level deeper than written.
  std::string s = "<fetch><entity name='a'><filter type='or'>";
  for (int i = 1; i < kMaxFetchNesting; ++i) s += "<filter>";
  for (int i = 1; i < kMaxFetchNesting; ++i) s += "</filter>";
  s += "</filter><filter/></entity></fetch>";
  auto r = ParseFetchXml(s);
  ExpectQueryError(r.status(), "wrapper");
  EXPECT_NE(r.status().message().find("nested 33 levels deep"), std::string::npos) << r.status().message();
}

TEST(FetchLimitTest, DeepNestingIsRejectedWithoutRecursion) {
  for (const char* open : {"<filter>", "<link-entity name='x'>", "<foo>", "<value>"}) {
    std::string s = "<fetch><entity name='a'>";
    for (int i = 0; i < 10000; ++i) s += open;
    s += "</entity></fetch>";
    auto r = ParseFetchXml(s);
    ExpectQueryError(r.status(), open);
    EXPECT_NE(r.status().message().find("elements are nested more than 36 levels deep"), std::string::npos)
        << r.status().message();
  }
  // Closed properly, still too deep.
  auto r = ParseFetchXml(NestedFilters(10000));
  ExpectQueryError(r.status(), "10000 filters");
  EXPECT_NE(r.status().message().find("nested more than 36 levels"), std::string::npos);
}

// Inputs of a few MB parse in time linear in their size.
TEST(FetchLimitTest, LargeInputsAreLinear) {
  auto time = [](const std::string& xml, bool ok) {
    auto start = std::chrono::steady_clock::now();
    auto r = ParseFetchXml(xml);
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.ok(), ok) << (r.ok() ? "" : r.status().message());
    return std::chrono::duration<double>(elapsed).count();
  };
  auto many_conditions = [](int n) {
    std::string s = "<fetch><entity name='a'><filter type='or'>";
    for (int i = 0; i < n; ++i)
      s += "<condition attribute='name' operator='eq' value='Contoso &amp; Fabrikam " + std::to_string(i) + "'/>";
    return s + "</filter></entity></fetch>";
  };
  auto many_values = [](int n) {
    std::string s = "<fetch><entity name='a'><filter><condition attribute='x' operator='in'>";
    for (int i = 0; i < n; ++i) s += "<value>" + std::to_string(i) + "</value>";
    return s + "</condition></filter></entity></fetch>";
  };
  auto many_attributes = [](int n) {  // on one element: duplicate detection must not be quadratic
    std::string s = "<fetch><entity name='a'";
    for (int i = 0; i < n; ++i) s += " a" + std::to_string(i) + "='1'";
    return s + "/></fetch>";
  };
  std::string big_cookie =
      "<fetch page='2' paging-cookie='" + std::string(4 << 20, 'c') + "'><entity name='a'/></fetch>";
  std::string big_value =
      InFilter("<condition attribute='x' operator='eq'><value>" + std::string(4 << 20, 'v') + "</value></condition>");
  std::string refs;
  for (int i = 0; i < (1 << 20); ++i) refs += "&amp;";
  std::string many_refs = InFilter("<condition attribute='x' operator='eq' value='" + refs + "'/>");
  std::string comments;
  for (int i = 0; i < 100000; ++i) comments += "<!-- - -->";
  std::string many_comments = "<fetch>" + comments + "<entity name='a'/></fetch>";

  double small = time(many_conditions(5000), true);
  double large = time(many_conditions(40000), true);  // ~3.4 MB
  EXPECT_LT(large, 2.0);
  EXPECT_LT(large, small * 40 + 0.05) << "8x input took " << large / small << "x time";
  EXPECT_LT(time(many_values(200000), true), 2.0);
  EXPECT_LT(time(many_attributes(100000), false), 2.0);
  EXPECT_LT(time(big_cookie, true), 2.0);
  EXPECT_LT(time(big_value, true), 2.0);
  EXPECT_LT(time(many_refs, true), 2.0);
  EXPECT_LT(time(many_comments, true), 2.0);
}

// ---------------------------------------------------------------------------------------------
// The model

TEST(FetchModelTest, KeepsConditionValuesRawAndInOrder) {
  auto q = ParseFetchXml(
      InFilter("<condition entityname='pc' attribute='x' operator='in'><value>b</value><value>a</value><value>b</value>"
               "<value> 1 </value></condition>"));
  ASSERT_TRUE(q.ok()) << q.status().message();
  const FetchCondition& c = q->filter->conditions.at(0);
  EXPECT_EQ(c.entityname, "pc");
  EXPECT_EQ(c.attribute, "x");
  EXPECT_EQ(c.op, "in");
  EXPECT_EQ(c.values, (std::vector<std::string>{"b", "a", "b", " 1 "}));
  EXPECT_TRUE(c.valueof.empty());
}

TEST(FetchModelTest, Defaults) {
  auto q = ParseFetchXml("<fetch><entity name='a'><link-entity name='b'/></entity></fetch>");
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->top || q->count || q->page || q->filter);
  EXPECT_FALSE(q->distinct || q->aggregate || q->returntotalrecordcount || q->no_lock || q->all_attributes);
  const FetchLink& l = q->links.at(0);
  EXPECT_EQ(l.link_type, "inner");
  EXPECT_FALSE(l.visible || l.intersect || l.all_attributes || l.filter);
}

TEST(FetchModelTest, EveryErrorIsAQueryError) {
  for (const ErrorCase& c : kErrorCases) ExpectQueryError(ParseFetchXml(c.xml).status(), c.xml);
}

}  // namespace
}  // namespace tributary::data
