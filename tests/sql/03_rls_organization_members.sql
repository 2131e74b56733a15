-- RLS and grants of public.organization_members: members read who belongs to their
-- organization; admins add, promote and remove admins and members but never touch or create an
-- owner; owners manage everyone; membership, not the token, decides; anon gets nothing.
begin;
select plan(43);

-- Fixture: organization A with two owners, two admins and three members; bystander organization
-- B with an owner, an admin and a member; a stranger whose token names A; newcomers to add.
select tests.create_fixture_table();

do $$
declare
  v_org_a uuid := tests.create_organization('Acme');
  v_org_b uuid := tests.create_organization('Bystander');
  v_user record;
begin
  insert into fx values ('org_a', v_org_a), ('org_b', v_org_b);
  for v_user in
    select * from (values
      ('owner_a', v_org_a, 'owner'), ('owner2_a', v_org_a, 'owner'),
      ('admin_a', v_org_a, 'admin'), ('admin2_a', v_org_a, 'admin'),
      ('member_a', v_org_a, 'member'), ('member2_a', v_org_a, 'member'), ('member3_a', v_org_a, 'member'),
      ('owner_b', v_org_b, 'owner'), ('admin_b', v_org_b, 'admin'), ('member_b', v_org_b, 'member'),
      ('stranger', v_org_a, null),
      ('new1', v_org_a, null), ('new2', v_org_a, null), ('new3', v_org_a, null),
      ('new4', v_org_b, null), ('new5', v_org_a, null)
    ) as u (name, organization_id, role)
  loop
    insert into fx values (v_user.name, tests.create_user(v_user.name || '@members.test', v_user.organization_id));
    if v_user.role is not null then
      perform tests.add_member(v_user.organization_id, pg_temp.id(v_user.name), v_user.role);
    end if;
  end loop;
end
$$;

-- Structure -------------------------------------------------------------------------------------

select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename = 'organization_members' order by policyname$$,
  array['Members can read their organization''s members: SELECT to {authenticated}',
        'Org admins can add members: INSERT to {authenticated}',
        'Org admins can change member roles: UPDATE to {authenticated}',
        'Org admins can remove members: DELETE to {authenticated}'],
  'organization_members has one policy per command, all for signed-in users only'
);

-- anon ------------------------------------------------------------------------------------------

select tests.authenticate_as_anon();

select throws_ok($$select * from public.organization_members$$, '42501', null, 'anon cannot read memberships');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new1'), 'owner')$$,
  '42501', null, 'anon cannot add a member');
select throws_ok($$update public.organization_members set role = 'owner'$$, '42501', null,
  'anon cannot change a role');
select throws_ok($$delete from public.organization_members$$, '42501', null, 'anon cannot remove a member');

-- Stranger: the token names organization A, but the user is not a member ------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('stranger'));

select is_empty($$select * from public.organization_members$$,
  'a signed-in non-member whose token names the organization sees none of its members');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('stranger'), 'owner')$$,
  '42501', null, 'a signed-in non-member cannot make themselves an owner of the organization their token names');
select is_empty($$update public.organization_members set role = 'member' returning user_id$$,
  'a signed-in non-member cannot change anyone''s role');
select is_empty($$delete from public.organization_members returning user_id$$,
  'a signed-in non-member cannot remove anyone');

-- Member ----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));

select set_eq(
  $$select user_id from public.organization_members$$,
  $$select id from fx where name in ('owner_a', 'owner2_a', 'admin_a', 'admin2_a', 'member_a', 'member2_a', 'member3_a')$$,
  'a member reads every member of their organization and nobody else'
);
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new1'), 'member')$$,
  '42501', null, 'a member cannot add a member');
select is_empty($$update public.organization_members set role = 'admin' where user_id = pg_temp.id('member_a') returning user_id$$,
  'a member cannot promote themselves');
select is_empty($$delete from public.organization_members where user_id = pg_temp.id('member2_a') returning user_id$$,
  'a member cannot remove another member');

-- Admin -----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select results_eq(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new1'), 'member') returning role$$,
  array['member'], 'an admin adds a member');
select results_eq(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new2'), 'admin') returning role$$,
  array['admin'], 'an admin adds an admin');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new3'), 'owner')$$,
  '42501', null, 'an admin cannot add an owner');
select results_eq(
  $$update public.organization_members set role = 'admin' where user_id = pg_temp.id('member2_a') returning role$$,
  array['admin'], 'an admin promotes a member to admin');
select throws_ok(
  $$update public.organization_members set role = 'owner' where user_id = pg_temp.id('member3_a')$$,
  '42501', null, 'an admin cannot promote anyone to owner');
select is_empty(
  $$update public.organization_members set role = 'member' where user_id = pg_temp.id('owner_a') returning user_id$$,
  'an admin cannot demote an owner');
select is_empty($$delete from public.organization_members where user_id = pg_temp.id('owner2_a') returning user_id$$,
  'an admin cannot remove an owner');
select results_eq($$delete from public.organization_members where user_id = pg_temp.id('new1') returning user_id$$,
  array[pg_temp.id('new1')], 'an admin removes a member');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_b'), pg_temp.id('new4'), 'member')$$,
  '42501', null, 'an admin cannot add a member to another organization');
select is_empty(
  $$update public.organization_members set role = 'admin' where user_id = pg_temp.id('member_b') returning user_id$$,
  'an admin cannot change roles in another organization');
select throws_ok(
  $$update public.organization_members set organization_id = pg_temp.id('org_b') where user_id = pg_temp.id('member_a')$$,
  '42501', null, 'an admin cannot move a membership to another organization');

-- Owner -----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('owner_a'));

select results_eq(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new3'), 'owner') returning role$$,
  array['owner'], 'an owner adds an owner');
select results_eq(
  $$update public.organization_members set role = 'owner' where user_id = pg_temp.id('new2') returning role$$,
  array['owner'], 'an owner promotes an admin to owner');
select results_eq(
  $$update public.organization_members set role = 'admin' where user_id = pg_temp.id('owner2_a') returning role$$,
  array['admin'], 'an owner demotes another owner');
select results_eq($$delete from public.organization_members where user_id = pg_temp.id('new3') returning user_id$$,
  array[pg_temp.id('new3')], 'an owner removes another owner');
select results_eq($$delete from public.organization_members where user_id = pg_temp.id('admin2_a') returning user_id$$,
  array[pg_temp.id('admin2_a')], 'an owner removes an admin');

-- A removed admin's token is still valid, but membership is gone ---------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin2_a'));

select is_empty($$select * from public.organization_members$$,
  'a removed admin with a still-valid token sees no member');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new5'), 'member')$$,
  '42501', null, 'a removed admin with a still-valid token cannot add a member');
select is_empty($$delete from public.organization_members where user_id = pg_temp.id('member3_a') returning user_id$$,
  'a removed admin with a still-valid token cannot remove a member');

-- Admin of another organization -----------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));

select results_eq($$select distinct organization_id from public.organization_members$$, array[pg_temp.id('org_b')],
  'an admin of another organization reads only their own organization''s members');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('admin_b'), 'admin')$$,
  '42501', null, 'an admin of another organization cannot join this one');
select is_empty(
  $$update public.organization_members set role = 'member' where organization_id = pg_temp.id('org_a') returning user_id$$,
  'an admin of another organization cannot change roles here');
select is_empty(
  $$delete from public.organization_members where organization_id = pg_temp.id('org_a') returning user_id$$,
  'an admin of another organization cannot remove members here');

-- user_metadata never grants anything -----------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'), jsonb_build_object('organization_id', pg_temp.id('org_a')));

select results_eq($$select distinct organization_id from public.organization_members$$, array[pg_temp.id('org_b')],
  'user_metadata naming another organization does not reveal its members');
select throws_ok(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new5'), 'member')$$,
  '42501', null, 'user_metadata naming another organization does not let an admin add members to it');

-- Service role ----------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as_service_role();

select ok(
  (select count(distinct organization_id) from public.organization_members
   where organization_id in (pg_temp.id('org_a'), pg_temp.id('org_b'))) = 2,
  'the service role reads the members of every organization'
);
select results_eq(
  $$insert into public.organization_members (organization_id, user_id, role)
    values (pg_temp.id('org_a'), pg_temp.id('new5'), 'owner') returning role$$,
  array['owner'], 'the service role adds an owner');
select results_eq(
  $$update public.organization_members set role = 'member' where user_id = pg_temp.id('new5') returning role$$,
  array['member'], 'the service role changes any role');
select results_eq($$delete from public.organization_members where user_id = pg_temp.id('new5') returning user_id$$,
  array[pg_temp.id('new5')], 'the service role removes any member');

-- What changed, seen by the table owner ---------------------------------------------------------

select tests.clear_authentication();

select set_eq(
  $$select user_id, role from public.organization_members where organization_id = pg_temp.id('org_b')$$,
  $$values (pg_temp.id('owner_b'), 'owner'), (pg_temp.id('admin_b'), 'admin'), (pg_temp.id('member_b'), 'member')$$,
  'the bystander organization''s memberships are unchanged'
);

select * from finish();
rollback;
