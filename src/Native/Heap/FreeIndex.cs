// The free index: a treap of an arena's free blocks, ordered by address, where
// every node also carries a bound on the largest free size in its subtree (as
// Linux's vmalloc tree carries the exact maximum). The lowest-addressed block
// that fits is found by a descent: go left while the left subtree may hold a big
// enough block, else take this node if it fits, else go right. That is exactly the
// block a walk of an address-ordered free list would stop at, in O(log n).
//
// The nodes do not live in the free blocks but packed in chunks of the arena's
// own (40 bytes each), with a copy of the block's address and size: a search
// reads only these dense chunks, which stay in the CPU's caches, instead of
// chasing pointers through free memory the program has not touched in a while.
// A free block keeps a pointer to its node in its first payload word.
//
// Balance: each node gets a random priority when it is made, and parents have
// higher priority than children (a treap), which keeps the expected depth
// logarithmic whatever order blocks are freed in. Insert and remove work without
// rotations or recursion: insert splits the subtree where the new node belongs,
// remove zips the removed node's two subtrees together. Because the priority belongs to
// the node, not to the address, a block that takes another's place in the order
// (a free that absorbs its upper neighbour, a realloc that eats into it) just
// takes over its node: no rotations.
//
// The bound is an *upper* bound, kept lazily: when a block shrinks (every
// allocation carves the top of one) only its own size is updated, so the bounds
// above it may be too high. A search that follows a too-high bound into a subtree
// without a fit comes back out and tightens that subtree's bound on the way, so
// each stale bound costs one detour, once. Growth raises the bounds on its path
// at once, so a bound is never too low, and the search never misses.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heap
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Node
    {
        public Block* Block;
        public uint Size;        // the block's size in units (a copy, kept in step)
        public uint Bound;       // >= the largest Size in this subtree
        public Node* Left, Right;
        public ulong Priority;
    }

    internal static unsafe class FreeIndex
    {
        private const nuint ChunkBytes = 64 << 10;

        // ---- nodes ----

        /// <summary>The node a free block points to from its first payload word.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Node* NodeOf(Block* b) => *(Node**)Blocks.Payload(b);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint BoundOf(Node* n) => n == null ? 0 : n->Bound;

        /// <summary>Recomputes a node's bound from its own size and its children's bounds.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Refresh(Node* n)
        {
            uint max = n->Size;
            uint l = BoundOf(n->Left), r = BoundOf(n->Right);
            if (l > max) max = l;
            if (r > max) max = r;
            n->Bound = max;
        }

        private static Node* NewNode(Arena* a, Block* b)
        {
            Node* n = a->NodeFree;
            if (n != null)
            {
                a->NodeFree = n->Left;
            }
            else
            {
                if (a->NodeChunkLeft < (nuint)sizeof(Node))
                {
                    a->NodeChunk = OsMemory.Map(ChunkBytes);
                    if (a->NodeChunk == null) Fatal.Die("out of memory for the free index");
                    a->NodeChunkLeft = ChunkBytes;
                }
                n = (Node*)a->NodeChunk;
                a->NodeChunk += sizeof(Node);
                a->NodeChunkLeft -= (nuint)sizeof(Node);
            }
            n->Block = b;
            n->Size = b->SizeUnits;
            n->Bound = b->SizeUnits;
            n->Left = null;
            n->Right = null;
            // A random priority: a hash of the address and a running count, so that
            // even blocks freed again and again at one address get fresh draws.
            ulong x = (ulong)b ^ ((ulong)(++a->NodeDraws) << 47);
            x ^= x >> 31; x *= 0x7FB5D329728EA185; x ^= x >> 27; x *= 0x81DADEF4BC2DD44D; x ^= x >> 33;
            n->Priority = x;
            *(Node**)Blocks.Payload(b) = n;
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
        /// nodes outrank the new one (raising their bounds), then the subtree found there is
        /// split by address into the new node's two children. No recursion, no rotations;
        /// nodes on the split paths lose subtrees, so their bounds may go stale high, which
        /// the search tolerates (see above).</summary>
        public static void Insert(Arena* a, Block* b)
        {
            Node* n = NewNode(a, b);
            Node** link = &a->NodeRoot;
            while (*link != null && (*link)->Priority > n->Priority)
            {
                Node* cur = *link;
                if (cur->Bound < n->Size) cur->Bound = n->Size;
                link = b < cur->Block ? &cur->Left : &cur->Right;
            }
            Node* t = *link;
            Node** low = &n->Left;
            Node** high = &n->Right;
            while (t != null)
            {
                if (t->Block < b) { *low = t; low = &t->Right; t = t->Right; }
                else { *high = t; high = &t->Left; t = t->Left; }
            }
            *low = null;
            *high = null;
            Refresh(n);
            *link = n;
        }

        /// <summary>Removes free block b (which must be in the index): its two subtrees are
        /// zipped together in its place, by priority. A node that takes in the other side's
        /// subtree takes in its bound too, so no bound is ever too low.</summary>
        public static void Remove(Arena* a, Block* b)
        {
            Node* n = NodeOf(b);
            Node** link = &a->NodeRoot;
            while (*link != n)
                link = b < (*link)->Block ? &(*link)->Left : &(*link)->Right;
            Node* l = n->Left;
            Node* r = n->Right;
            while (l != null && r != null)
            {
                if (l->Priority > r->Priority)
                {
                    if (l->Bound < r->Bound) l->Bound = r->Bound;
                    *link = l;
                    link = &l->Right;
                    l = l->Right;
                }
                else
                {
                    if (r->Bound < l->Bound) r->Bound = l->Bound;
                    *link = r;
                    link = &r->Left;
                    r = r->Left;
                }
            }
            *link = l != null ? l : r;
            FreeNode(a, n);
        }

        /// <summary>Free block <paramref name="nw"/> takes over node <paramref name="old"/> (whose
        /// block leaves the index): nothing else lies between the two addresses, so the order
        /// holds, and the priority is the node's own, so no rotation is needed. Used when a
        /// freed block absorbs its free upper neighbour, and when realloc grows into one. The
        /// caller reads old (NodeOf) before nw's header may overwrite the pointer to it.</summary>
        public static void Replace(Arena* a, Node* old, Block* nw)
        {
            old->Block = nw;
            old->Size = nw->SizeUnits;
            *(Node**)Blocks.Payload(nw) = old;
            if (old->Size > old->Bound) RaiseBounds(a, nw);
        }

        /// <summary>After b's size changed in place (its address did not): its node's copy
        /// follows; a growth raises the bounds on its path, a shrink needs nothing (see above).</summary>
        public static void Resized(Arena* a, Block* b)
        {
            Node* n = NodeOf(b);
            uint size = b->SizeUnits;
            bool grew = size > n->Size;
            n->Size = size;
            if (grew) RaiseBounds(a, b);
        }

        private static void RaiseBounds(Arena* a, Block* b)
        {
            uint size = b->SizeUnits;
            for (Node* n = a->NodeRoot; n != null; n = b < n->Block ? n->Left : n->Right)
            {
                if (n->Bound < size) n->Bound = size;
                if (n->Block == b) return;
            }
        }

        /// <summary>The lowest-addressed block of at least <paramref name="units"/>, or null.
        /// Tightens every bound that led it astray.</summary>
        public static Block* FirstFit(Arena* a, uint units)
        {
            // A straight descent first: while the bounds are right it finds the block
            // without a single call. At the first sign of a stale bound, the recursive
            // search below starts over from the root and tightens what misled it.
            Node* n = a->NodeRoot;
            if (n == null || n->Bound < units) return null;
            while (true)
            {
                Node* left = n->Left;
                if (left != null && left->Bound >= units) { n = left; continue; }
                if (n->Size >= units) return n->Block;
                Node* right = n->Right;
                if (right == null || right->Bound < units) break;
                n = right;
            }
            n = FirstFit(a->NodeRoot, units);
            return n == null ? null : n->Block;
        }

        private static Node* FirstFit(Node* n, uint units)
        {
            if (n == null || n->Bound < units) return null;
            Node* left = n->Left;
            if (left != null && left->Bound >= units)
            {
                Node* found = FirstFit(left, units);
                if (found != null) return found;
            }
            if (n->Size >= units) return n;
            Node* right = n->Right;
            if (right != null && right->Bound >= units)
            {
                Node* found = FirstFit(right, units);
                if (found != null) return found;
            }
            // Nothing here fits: the bound was stale. The children's bounds are now
            // below units, so recomputing from them tightens this one.
            Refresh(n);
            return null;
        }

        /// <summary>The lowest-addressed block above <paramref name="after"/> of at least <paramref name="units"/>, or null.</summary>
        public static Block* FirstFitAbove(Arena* a, uint units, Block* after)
        {
            Node* n = FirstFitAbove(a->NodeRoot, units, after);
            return n == null ? null : n->Block;
        }

        private static Node* FirstFitAbove(Node* n, uint units, Block* after)
        {
            if (n == null || n->Bound < units) return null;
            if (n->Block > after)
            {
                Node* found = FirstFitAbove(n->Left, units, after);
                if (found != null) return found;
                if (n->Size >= units) return n;
            }
            return FirstFitAbove(n->Right, units, after);
        }

        /// <summary>The largest free size in the index, exactly: a branch-and-bound walk
        /// that skips every subtree whose bound cannot beat the best size found so far,
        /// and tightens the bounds it passes.</summary>
        public static uint Largest(Arena* a)
        {
            uint best = 0;
            TightenAbove(a->NodeRoot, ref best);
            return best;
        }

        private static void TightenAbove(Node* n, ref uint best)
        {
            if (n == null || n->Bound <= best) return;
            if (n->Size > best) best = n->Size;
            // The child with the higher bound first: it is the likelier home of the maximum.
            if (BoundOf(n->Left) >= BoundOf(n->Right)) { TightenAbove(n->Left, ref best); TightenAbove(n->Right, ref best); }
            else { TightenAbove(n->Right, ref best); TightenAbove(n->Left, ref best); }
            Refresh(n);
        }

        /// <summary>True if b is in the index where an address search finds it (heap check).</summary>
        public static bool Contains(Arena* a, Block* b)
        {
            for (Node* n = a->NodeRoot; n != null; n = b < n->Block ? n->Left : n->Right)
                if (n->Block == b) return true;
            return false;
        }
    }
}
