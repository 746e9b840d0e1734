// The free index: a treap of an arena's free blocks, ordered by address, where
// every node also knows the largest free size in each of its two subtrees, exactly
// (as Linux's vmalloc tree keeps a subtree maximum). The lowest-addressed block
// that fits is found by one descent that never turns back: go left if the left
// subtree holds a big enough block, else take this node if it fits, else go right
// (the right subtree must hold one, or the maximum above would have said no).
// That is exactly the block a walk of an address-ordered free list would stop at,
// in O(log n), reading only the nodes on one path.
//
// The nodes do not live in the free blocks but packed in chunks of the arena's
// own (64 bytes each, a cache line), with a copy of the block's address and size: a search
// reads only these dense chunks, which stay in the CPU's caches, instead of
// chasing pointers through free memory the program has not touched in a while.
// A free block keeps a pointer to its node in its first payload word.
//
// Balance: each node gets a random priority when it is made, and parents have
// higher priority than children (a treap), which keeps the expected depth
// logarithmic whatever order blocks are freed in. Insert and remove work without
// rotations or recursion: insert splits the subtree where the new node belongs,
// remove zips the removed node's two subtrees together. Because the priority
// belongs to the node, not to the address, a block that takes another's place in
// the order (the rest of a block cut from below, a free that absorbs its upper
// neighbour) just takes over its node: no rotations.
//
// Two tiers: the priority's top bit is set for a node made for a block of 64 KiB or
// more, so such nodes sit above all others, each tier a random treap of its own (the
// depth is at most the sum of the two, both logarithmic). Why: most allocations are
// carved from the bottom of a region's untouched top block, the largest in the arena,
// so every carve changes the maximum of each subtree above its node. At a random
// depth among thousands of small free blocks that change climbed ~20 levels on every
// call; among the few large blocks it climbs two or three (issue 8: half the cost of
// an aligned call). A node keeps its priority for its life (no rotations), so a block
// that shrinks below 64 KiB stays in the upper tier; the tier stays small all the same,
// as it holds only nodes made for large blocks.
//
// Keeping the maxima exact: every node has a parent pointer, so a change of size
// is carried upwards only as far as it changes a maximum. Insert and remove fix the
// maxima of the nodes whose children they changed, from the bottom up, then carry
// the change upwards the same way. A rise (a merge, an insert) and a fall (a carve,
// a remove) are carried by two loops: a rise sets each maximum on the way to the
// new size and stops at the first that is already as large, with nothing to
// compute; only a fall needs each node's other figures to know its new maximum.
// On the fragmentation mix a carve or a merge climbs about six levels (in a
// first-fit heap the block carved is larger than every free block below it, so
// it is the maximum of several subtrees above it); one loop for both cost 41
// instructions a level, the two cost 12 (rise) and 27 (fall): docs/performance/
// fragmentation.md.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heaps
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Node
    {
        // What a search reads comes first, so that it shares a cache line.
        public Node* Left, Right;
        public uint Size;        // the block's size in units (a copy, kept in step)
        public uint LeftMax;     // the largest Size in the left subtree, exactly (0: empty)
        public uint RightMax;    // the largest Size in the right subtree, exactly
        public uint Priority;
        public Block* Block;
        public Node* Parent;     // null at the root
        // Padding to 64 bytes, so that every node is one cache line (chunks are page aligned):
        // at 48 bytes half the nodes straddled two, and a climb or a search level touching one
        // missed the first-level cache twice. 64-byte nodes took a quarter off the allocator's
        // first-level read misses on the fragmentation mix (callgrind --cache-sim=yes,
        // docs/performance/fragmentation.md), for 16 bytes more per free block.
        private readonly ulong _lineFill0, _lineFill1;
    }

    internal static unsafe class FreeIndex
    {
        private const nuint ChunkBytes = 64 << 10;

        /// <summary>A node made for a block of at least this many units (64 KiB: a region's
        /// untouched top, a large hole) outranks every node made for a smaller one (the top
        /// bit of its priority). See "Two tiers" above.</summary>
        private const uint HighUnits = (64 << 10) >> Blocks.UnitShift;
        private const uint HighTier = 1u << 31;

        // ---- nodes ----

        /// <summary>The node a free block points to from its first payload word (mangled
        /// there, and checked when read: FreeLinks).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Node* NodeOf(Block* b) => FreeLinks.NodeOf(b);

        /// <summary>The largest size in the subtree under n (0 for none).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint MaxOf(Node* n)
        {
            if (n == null) return 0;
            uint max = n->Size;
            if (n->LeftMax > max) max = n->LeftMax;
            if (n->RightMax > max) max = n->RightMax;
            return max;
        }

        /// <summary>Recomputes both of n's subtree maxima from its children.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Recompute(Node* n)
        {
            n->LeftMax = MaxOf(n->Left);
            n->RightMax = MaxOf(n->Right);
        }

        /// <summary>The largest size in the subtree on side <paramref name="side"/> (0 left,
        /// 1 right) of p fell to <paramref name="max"/> (a block there shrank or left): record
        /// it, and carry the change upwards while it lowers the maximum of the subtree above.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void LowerUp(Node* p, nuint side, uint max)
        {
            // Written without data-dependent branches but the loop's exits: which side a
            // child is on is a coin toss at every level, and mispredicted branches were
            // most of the time this climb took (callgrind's branch simulation, issue 8).
            // The old maximum is read once: where the climb goes on, the subtree's old maximum
            // was this side's (it was above the rest), so the next level's side held it too.
            uint old = Maxima(p)[side];
            while (true)
            {
                uint* m = Maxima(p);
                m[side] = max;
                // p's maximum is the larger of this side's and the rest (the other side, p's
                // own size). It changed only if this side's old maximum was above the rest
                // (max < old: it was lowered); then p's new maximum is carried up.
                uint rest = SmallMax(m[side ^ 1], p->Size);
                if (old <= rest) return;
                Node* above = p->Parent;
                if (above == null) return;
                max = SmallMax(max, rest);
                side = SideOf(above, p);
                p = above;
            }
        }

        /// <summary>A block of <paramref name="units"/> is now in the subtree on side
        /// <paramref name="side"/> of p (one grew or arrived): each maximum on the way up is
        /// raised to it, until one is already at least that. Then none above changes either,
        /// as each is at least the one below it. A rise needs no maximum computed: the new
        /// one is the size itself.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void RaiseUp(Node* p, nuint side, uint units)
        {
            while (true)
            {
                uint* m = Maxima(p);
                if (m[side] >= units) return;
                m[side] = units;
                Node* above = p->Parent;
                if (above == null) return;
                side = SideOf(above, p);
                p = above;
            }
        }

        /// <summary>n's LeftMax and RightMax as an array (side 0, 1), by offset: taking the
        /// field's address (&amp;n-&gt;LeftMax) makes the compiler test n for null first, one
        /// instruction on every level of every climb.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint* Maxima(Node* n) => (uint*)((byte*)n + MaximaOffset);

        private const int MaximaOffset = 20;   // after Left, Right (8 bytes each) and Size: see LayoutHolds

        /// <summary>True when a node is one cache line and its fields lie where Maxima expects
        /// them (checked at start-up).</summary>
        public static bool LayoutHolds()
        {
            Node probe;
            return sizeof(Node) == 64
                && (byte*)&probe.LeftMax - (byte*)&probe == MaximaOffset
                && (byte*)&probe.RightMax - (byte*)&probe == MaximaOffset + sizeof(uint);
        }

        /// <summary>The larger of a and b, without a branch, for sizes in the index, which are
        /// below 2^31 units (a region is far smaller than 32 GiB): the difference then fits in
        /// an int, whose sign says which is larger (5 instructions; the unsigned form with a
        /// 64-bit borrow took 7, and LowerUp takes two a level).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint SmallMax(uint a, uint b)
        {
            int d = (int)(a - b);
            return a - (uint)(d & (d >> 31));              // a - (a - b) = b when a < b
        }

        /// <summary>1 when a &lt; b, else 0, without a branch.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static nuint Below(uint a, uint b) => (nuint)(((ulong)a - b) >> 63);

        /// <summary>0 if c is p's left child, 1 if its right, without a branch.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static nuint SideOf(Node* p, Node* c)
        {
            // A compare kept as a value compiles to setne (no branch); a bool's byte is 0 or 1.
            bool right = p->Left != c;
            return *(byte*)&right;
        }

        /// <summary>n's own size changed from <paramref name="before"/>: its parent's record
        /// of the subtree follows, and the maxima above as far as they change. A block that
        /// grew (a merge) only raises them; one that shrank (a carve) may lower them.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SizeChanged(Node* n, uint before)
        {
            Node* p = n->Parent;
            if (p == null) return;
            if (n->Size > before) RaiseUp(p, SideOf(p, n), n->Size);
            else LowerUp(p, SideOf(p, n), MaxOf(n));
        }

        /// <summary>True when a node can be had without asking the OS, or after asking it
        /// for a new chunk; false when the OS says no. Whoever may insert calls this first,
        /// before changing anything, so that no half-done operation meets a missing node.
        /// Inlined: every free that merges with no neighbour asks, and a node is nearly always
        /// at hand; mapping a chunk is a call of its own.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool EnsureNode(Arena* a) =>
            a->NodeFree != null || a->NodeChunkLeft >= (nuint)sizeof(Node) || MapNodeChunk(a);

        /// <summary>EnsureNode when neither a released node nor room in the chunk is left.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static bool MapNodeChunk(Arena* a)
        {
            byte* chunk = Mappings.Map(ChunkBytes);
            if (chunk == null) return false;
            if (!PageMap.MarkNodes(chunk, ChunkBytes))
            {
                Mappings.Unmap(chunk, ChunkBytes);
                return false;
            }
            a->NodeChunk = chunk;
            a->NodeChunkLeft = ChunkBytes;
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Node* NewNode(Arena* a, Block* b)
        {
            Node* n = a->NodeFree;
            if (n != null)
            {
                a->NodeFree = n->Left;
            }
            else
            {
                if (a->NodeChunkLeft < (nuint)sizeof(Node) && !EnsureNode(a))
                    Fatal.Die("out of memory for the free index"); // callers made sure of a node first
                n = (Node*)a->NodeChunk;
                a->NodeChunk += sizeof(Node);
                a->NodeChunkLeft -= (nuint)sizeof(Node);
            }
            n->Block = b;
            n->Size = b->SizeUnits;
            n->LeftMax = 0;
            n->RightMax = 0;
            n->Left = null;
            n->Right = null;
            n->Parent = null;
            // A random priority: a hash of the address and a running count, so that
            // even blocks freed again and again at one address get fresh draws.
            ulong x = (ulong)b ^ ((ulong)(++a->NodeDraws) << 47);
            x ^= x >> 31; x *= 0x7FB5D329728EA185; x ^= x >> 27; x *= 0x81DADEF4BC2DD44D; x ^= x >> 33;
            n->Priority = (uint)x >> 1;
            if (n->Size >= HighUnits) n->Priority |= HighTier;
            FreeLinks.SetNode(b, n);
            return n;
        }

        private static void FreeNode(Arena* a, Node* n)
        {
            n->Block = null;
            n->Left = a->NodeFree;
            a->NodeFree = n;
        }

        // ---- operations (the arena lock is held) ----

        /// <summary>Adds free block b (its header already says its size): down the path while
        /// nodes outrank the new one (each takes the new size into the maximum of the side
        /// it goes down, which is then exact, as nothing leaves that side), then the subtree
        /// found there is split by address into the new node's two children. Splitting
        /// changes one child of each node on the two split chains; their maxima are fixed
        /// from the bottom of each chain up. No recursion, no rotations.</summary>
        public static void Insert(Arena* a, Block* b)
        {
            Node* n = NewNode(a, b);
            Node* parent = null;
            Node** link = &a->NodeRoot;
            while (*link != null && (*link)->Priority > n->Priority)
            {
                Node* cur = *link;
                parent = cur;
                if (b < cur->Block)
                {
                    if (cur->LeftMax < n->Size) cur->LeftMax = n->Size;
                    link = &cur->Left;
                }
                else
                {
                    if (cur->RightMax < n->Size) cur->RightMax = n->Size;
                    link = &cur->Right;
                }
            }
            SplitUnder(n, *link);
            n->Parent = parent;
            *link = n;
        }

        /// <summary>Insert, for free block b that lies just below the block of node
        /// <paramref name="above"/> with no free block between them (the head left below an
        /// aligned block carved out of above's block, which above now holds). Where the
        /// search for b would end is known: the right end of above's left subtree (or
        /// above's empty left). From there the climb goes up only past the nodes that rank
        /// below the new one (as a rule none or one or two: a new node is most likely a leaf),
        /// instead of coming down the whole depth of the tree from the root.</summary>
        public static void InsertBelow(Arena* a, Block* b, Node* above)
        {
            Node* n = NewNode(a, b);
            Node* leaf = above;                 // the node whose empty child slot b's search ends at
            if (leaf->Left != null)
            {
                leaf = leaf->Left;
                while (leaf->Right != null) leaf = leaf->Right;
            }
            // The slot's ancestors are the search path; those ranked at most n's priority are
            // a run ending at the slot (priorities fall along any path). Its top, x, is where n
            // goes, and x's subtree is split by address into n's children.
            Node* x = null;
            Node* parent = leaf;
            while (parent != null && parent->Priority <= n->Priority)
            {
                x = parent;
                parent = parent->Parent;
            }
            Node** link;
            if (x == null)
                link = leaf == above ? &leaf->Left : &leaf->Right;
            else
                link = parent == null ? &a->NodeRoot : parent->Left == x ? &parent->Left : &parent->Right;
            SplitUnder(n, *link);
            n->Parent = parent;
            *link = n;
            // The side of each ancestor that now holds n had the same blocks but b: its
            // maximum rises to b's size where that is more, as far up as it does.
            for (Node* p = parent, c = n; p != null; c = p, p = p->Parent)
            {
                if (p->Left == c) { if (p->LeftMax >= n->Size) break; p->LeftMax = n->Size; }
                else { if (p->RightMax >= n->Size) break; p->RightMax = n->Size; }
            }
        }

        /// <summary>Splits subtree t by the address of n's block into n's two children: nodes
        /// below go down n's left chain (each linked by its right child), nodes above down
        /// its right chain (each linked by its left). Splitting changes one child of each node
        /// on the two chains; their maxima are fixed from the bottom of each chain up, then n's.</summary>
        private static void SplitUnder(Node* n, Node* t)
        {
            Block* b = n->Block;
            Node* lowTail = n, highTail = n;
            Node** low = &n->Left;
            Node** high = &n->Right;
            while (t != null)
            {
                if (t->Block < b) { *low = t; t->Parent = lowTail; lowTail = t; low = &t->Right; t = t->Right; }
                else { *high = t; t->Parent = highTail; highTail = t; high = &t->Left; t = t->Left; }
            }
            *low = null;
            *high = null;
            for (Node* x = lowTail; x != n; x = x->Parent) x->RightMax = MaxOf(x->Right);
            for (Node* x = highTail; x != n; x = x->Parent) x->LeftMax = MaxOf(x->Left);
            Recompute(n);
        }

        /// <summary>Removes free block b (which must be in the index): its two subtrees are
        /// zipped together in its place, by priority. The nodes on the zip chain have a new
        /// child each; their maxima are fixed from the bottom up, and the change is carried
        /// above as far as it goes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Remove(Arena* a, Block* b) => RemoveNode(a, NodeOf(b));

        /// <summary>Remove, for the node n of a block in the index (checked by the caller).</summary>
        public static void RemoveNode(Arena* a, Node* n)
        {
            Node* parent = n->Parent;
            bool wasLeft = parent != null && parent->Left == n;
            Node** top = parent == null ? &a->NodeRoot : wasLeft ? &parent->Left : &parent->Right;
            Node** link = top;
            Node* owner = parent;          // the node whose child *link is
            Node* l = n->Left;
            Node* r = n->Right;
            while (l != null && r != null)
            {
                if (l->Priority > r->Priority) { *link = l; l->Parent = owner; owner = l; link = &l->Right; l = l->Right; }
                else { *link = r; r->Parent = owner; owner = r; link = &r->Left; r = r->Left; }
            }
            Node* rest = l != null ? l : r;
            *link = rest;
            if (rest != null) rest->Parent = owner;
            for (Node* x = owner; x != parent; x = x->Parent) Recompute(x);
            if (parent != null) LowerUp(parent, wasLeft ? 0u : 1u, MaxOf(*top));
            FreeNode(a, n);
        }

        /// <summary>Free block <paramref name="nw"/> takes over node <paramref name="old"/> (whose
        /// block leaves the index): nothing else lies between the two addresses, so the order
        /// holds, and the priority is the node's own, so no rotation is needed. Used for the
        /// rest of a block cut from below, when a freed block absorbs its free upper
        /// neighbour, and when realloc grows into one. The caller reads old (NodeOf) before
        /// nw's header may overwrite the pointer to it. Inlined, with its climb: every carve
        /// and most merges end here.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Replace(Node* old, Block* nw)
        {
            old->Block = nw;
            FreeLinks.SetNode(nw, old);
            uint before = old->Size;
            if (before == nw->SizeUnits) return;
            old->Size = nw->SizeUnits;
            SizeChanged(old, before);
        }

        /// <summary>After b's size changed in place (its address did not): its node's copy
        /// follows, and the maxima above it. Inlined, with its climb: a free that merges with
        /// its lower neighbour ends here.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Resized(Block* b)
        {
            Node* n = NodeOf(b);
            uint before = n->Size;
            if (before == b->SizeUnits) return;
            n->Size = b->SizeUnits;
            SizeChanged(n, before);
        }

        /// <summary>The lowest-addressed block of at least <paramref name="units"/>, or null.
        /// Inlined with its descent into the caller: every heap malloc makes one.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* FirstFit(Arena* a, uint units)
        {
            Node* n = a->NodeRoot;
            if (MaxOf(n) < units) return null;
            // RightMax >= units where it goes right: the maximum above promised a fit.
            return LowestFitUnder(n, units)->Block;
        }

        /// <summary>FirstFit, as the node (null when nothing fits).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Node* FirstFitNode(Arena* a, uint units)
        {
            Node* n = a->NodeRoot;
            return MaxOf(n) < units ? null : LowestFitUnder(n, units);
        }

        /// <summary>The next node after n in address order whose block has at least
        /// <paramref name="units"/>, or null: down n's right subtree if its maximum says so,
        /// else up to the first ancestor reached from its left that fits itself or whose
        /// right subtree does. Walking successive fits this way costs O(1) per step on
        /// average (each edge is crossed at most twice over a whole walk).</summary>
        public static Node* NextFit(Node* n, uint units)
        {
            if (n->RightMax >= units) return LowestFitUnder(n->Right, units);
            for (Node* p = n->Parent; p != null; n = p, p = p->Parent)
            {
                if (p->Left != n) continue;
                if (p->Size >= units) return p;
                if (p->RightMax >= units) return LowestFitUnder(p->Right, units);
            }
            return null;
        }

        /// <summary>The lowest fit in the subtree under n, whose maximum is known to be at least <paramref name="units"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Node* LowestFitUnder(Node* n, uint units)
        {
            // Left or right is chosen without a branch (an index into Left, Right): only
            // the exit is a branch, and it is taken once (see LowerUp for why).
            while (true)
            {
                nuint right = Below(n->LeftMax, units);          // nothing fits on the left
                if ((right & (Below(n->Size, units) ^ 1)) != 0) return n;
                n = ((Node**)n)[right];
            }
        }

        /// <summary>The largest free size in the index, exactly.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Largest(Arena* a) => MaxOf(a->NodeRoot);

        /// <summary>The largest size in the subtree under n (the purge walk prunes with it).</summary>
        public static uint SubtreeMax(Node* n) => MaxOf(n);

        /// <summary>True if b is in the index where an address search finds it (heap check).</summary>
        public static bool Contains(Arena* a, Block* b)
        {
            for (Node* n = a->NodeRoot; n != null; n = b < n->Block ? n->Left : n->Right)
                if (n->Block == b) return true;
            return false;
        }

        /// <summary>Heap check of the tree under n: in-order addresses ascend, each node
        /// describes its free block (size, the block's node pointer), parent pointers and
        /// priorities agree with the shape, and both maxima are exact. Counts nodes; returns
        /// problems, and the subtree's largest size.</summary>
        public static int Check(Node* n, Node* parent, ref ulong nodes, ref Block* last, out uint max)
        {
            max = 0;
            if (n == null) return 0;
            int problems = Check(n->Left, n, ref nodes, ref last, out uint leftMax);
            nodes++;
            Block* b = n->Block;
            if (last != null && b <= last) problems++;
            last = b;
            if (b->State != Blocks.Free || !Blocks.CheckOk(b)) problems++;
            if (n->Size != b->SizeUnits || FreeLinks.RawNodeOf(b) != n) problems++;
            if (n->Parent != parent) problems++;
            if (parent != null && n->Priority > parent->Priority) problems++;
            problems += Check(n->Right, n, ref nodes, ref last, out uint rightMax);
            if (n->LeftMax != leftMax || n->RightMax != rightMax) problems++;
            max = MaxOf(n);
            return problems;
        }
    }
}
